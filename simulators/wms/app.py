"""HTTP API of the fake WMS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from simulators.clock import Clock
from simulators.fakekit.app import build_app, call_context
from simulators.fakekit.auth import Credentials, derive_secret
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.system import FakeSystem
from simulators.seed import MasterData, Site, master_data
from simulators.wms.store import (
    AsnStatus,
    ExpectedReceipt,
    ExpectedReceiptRequest,
    Inspection,
    InspectionRequest,
    Receipt,
    ReceiptRequest,
    WmsStore,
)


Filter = Annotated[str | None, Query(max_length=100)]


asn_router = APIRouter(tags=["expected receipts"])
floor_router = APIRouter(tags=["warehouse floor"])


def _store(request: Request) -> WmsStore:
    return request.app.state.system.store


@asn_router.get("/sites", response_model=list[Site], status_code=200, summary="Warehouses this WMS runs")
def list_sites(store: WmsStore = Depends(_store)):
    return store.sites()


@asn_router.post("/expected-receipts", response_model=ExpectedReceipt, status_code=201, summary="Announce a return parcel (ASN) for an RMA and site")
def create_expected_receipt(body: ExpectedReceiptRequest, store: WmsStore = Depends(_store), ctx: CallContext = Depends(call_context)):
    return store.create_expected_receipt(body, ctx)


@asn_router.get("/expected-receipts", response_model=list[ExpectedReceipt], status_code=200, summary="Expected receipts, optionally filtered")
def list_expected_receipts(
    rma_id: Filter = None,
    site_id: Filter = None,
    status: Annotated[AsnStatus | None, Query()] = None,
    store: WmsStore = Depends(_store),
):
    return store.find_expected_receipts(rma_id, site_id, status)


@asn_router.get("/expected-receipts/{asn_id}", response_model=ExpectedReceipt, status_code=200, summary="One expected receipt")
def get_expected_receipt(asn_id: str, store: WmsStore = Depends(_store)):
    return store.expected_receipt(asn_id)


@floor_router.post("/receipts", response_model=Receipt, status_code=201, summary="Record a parcel received at the dock (blind when no ASN matches)")
def create_receipt(body: ReceiptRequest, store: WmsStore = Depends(_store), ctx: CallContext = Depends(call_context)):
    return store.create_receipt(body, ctx)


@floor_router.get("/receipts", response_model=list[Receipt], status_code=200, summary="Receipts, optionally filtered")
def list_receipts(rma_id: Filter = None, site_id: Filter = None, store: WmsStore = Depends(_store)):
    return store.find_receipts(rma_id, site_id)


@floor_router.get("/receipts/{receipt_id}", response_model=Receipt, status_code=200, summary="One receipt")
def get_receipt(receipt_id: str, store: WmsStore = Depends(_store)):
    return store.receipt(receipt_id)


@floor_router.post("/inspections", response_model=Inspection, status_code=201, summary="Record the inspection of received units: condition and disposition")
def create_inspection(body: InspectionRequest, store: WmsStore = Depends(_store), ctx: CallContext = Depends(call_context)):
    return store.create_inspection(body, ctx)


@floor_router.get("/inspections", response_model=list[Inspection], status_code=200, summary="Inspections, optionally filtered")
def list_inspections(rma_id: Filter = None, receipt_id: Filter = None, store: WmsStore = Depends(_store)):
    return store.find_inspections(rma_id, receipt_id)


@floor_router.get("/inspections/{inspection_id}", response_model=Inspection, status_code=200, summary="One inspection")
def get_inspection(inspection_id: str, store: WmsStore = Depends(_store)):
    return store.inspection(inspection_id)


def credentials(seed: int) -> Credentials:
    return Credentials(api_key=f"wk_{derive_secret('wms', seed, 'api-key')}")


def create_app(seed: int = 0, *, master: MasterData | None = None, clock: Clock | None = None, **system_options):
    master = master or master_data(seed)
    system = FakeSystem("wms", master, None, credentials(master.config.seed), clock=clock, **system_options)
    system.store = WmsStore(master, system.clock)
    return build_app(
        system,
        title="Fake WMS",
        description="Warehouse management for returns, shaped after ShipHero and Optoro: expected receipts (ASNs) "
        "for RMAs, receipts at the dock (blind when nothing was expected) and inspections with condition, "
        "disposition, serials and lots. Authenticate with `Authorization: Bearer <API key>`.",
        routers=[asn_router, floor_router],
        security={"apiKey": {"type": "http", "scheme": "bearer"}},
    )
