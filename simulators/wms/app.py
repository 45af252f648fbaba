"""HTTP API of the fake WMS."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from simulators.clock import Clock
from simulators.fakekit.app import call_context, create_fake
from simulators.fakekit.auth import Credentials, derive_secret
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.routes import fake_router
from simulators.seed import MasterData, Site
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


asn_router = fake_router(tags=["expected receipts"])
floor_router = fake_router(tags=["warehouse floor"])


def _store(request: Request) -> WmsStore:
    return request.app.state.system.store


@asn_router.get("/sites", response_model=list[Site], status_code=200, summary="Warehouses this WMS runs")
async def list_sites(request: Request):
    return _store(request).sites()


@asn_router.post("/expected-receipts", response_model=ExpectedReceipt, status_code=201, summary="Announce a return parcel (ASN) for an RMA and site")
async def create_expected_receipt(request: Request, body: ExpectedReceiptRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_expected_receipt(body, ctx)


@asn_router.get("/expected-receipts", response_model=list[ExpectedReceipt], status_code=200, summary="Expected receipts, optionally filtered")
async def list_expected_receipts(
    request: Request,
    rma_id: Filter = None,
    site_id: Filter = None,
    status: Annotated[AsnStatus | None, Query()] = None,
):
    return _store(request).find_expected_receipts(rma_id, site_id, status)


@asn_router.get("/expected-receipts/{asn_id}", response_model=ExpectedReceipt, status_code=200, summary="One expected receipt")
async def get_expected_receipt(request: Request, asn_id: str):
    return _store(request).expected_receipt(asn_id)


@floor_router.post("/receipts", response_model=Receipt, status_code=201, summary="Record a parcel received at the dock (blind when no ASN matches)")
async def create_receipt(request: Request, body: ReceiptRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_receipt(body, ctx)


@floor_router.get("/receipts", response_model=list[Receipt], status_code=200, summary="Receipts, optionally filtered")
async def list_receipts(request: Request, rma_id: Filter = None, site_id: Filter = None):
    return _store(request).find_receipts(rma_id, site_id)


@floor_router.get("/receipts/{receipt_id}", response_model=Receipt, status_code=200, summary="One receipt")
async def get_receipt(request: Request, receipt_id: str):
    return _store(request).receipt(receipt_id)


@floor_router.post("/inspections", response_model=Inspection, status_code=201, summary="Record the inspection of received units: condition and disposition")
async def create_inspection(request: Request, body: InspectionRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_inspection(body, ctx)


@floor_router.get("/inspections", response_model=list[Inspection], status_code=200, summary="Inspections, optionally filtered")
async def list_inspections(request: Request, rma_id: Filter = None, receipt_id: Filter = None):
    return _store(request).find_inspections(rma_id, receipt_id)


@floor_router.get("/inspections/{inspection_id}", response_model=Inspection, status_code=200, summary="One inspection")
async def get_inspection(request: Request, inspection_id: str):
    return _store(request).inspection(inspection_id)


def credentials(seed: int) -> Credentials:
    return Credentials(api_key=f"wk_{derive_secret('wms', seed, 'api-key')}")


def create_app(seed: int = 0, *, master: MasterData | None = None, clock: Clock | None = None, **system_options):
    return create_fake(
        "wms", WmsStore, credentials, seed=seed, master=master, clock=clock,
        title="Fake WMS",
        description="Warehouse management for returns, shaped after ShipHero and Optoro: expected receipts (ASNs) "
        "for RMAs, receipts at the dock (blind when nothing was expected) and inspections with condition, "
        "disposition, serials and lots. Authenticate with `Authorization: Bearer <API key>`.",
        routers=[asn_router, floor_router],
        **system_options,
    )
