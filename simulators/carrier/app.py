"""HTTP API of the fake carrier."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from simulators.carrier.store import CarrierStore, Label, LabelRequest, Tracker
from simulators.clock import Clock
from simulators.fakekit.app import call_context, create_fake
from simulators.fakekit.auth import Credentials, derive_secret
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.routes import fake_router
from simulators.seed import MasterData

router = fake_router(tags=["labels and tracking"])


def _store(request: Request) -> CarrierStore:
    return request.app.state.system.store


@router.post("/labels", response_model=Label, status_code=201, summary="Buy a return label for an RMA")
async def create_label(request: Request, body: LabelRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_label(body, ctx)


@router.get("/labels", response_model=list[Label], summary="Labels, optionally for one RMA")
async def list_labels(request: Request, rma_id: Annotated[str | None, Query()] = None):
    return _store(request).find_labels(rma_id)


@router.get("/labels/{label_id}", response_model=Label, summary="One label")
async def get_label(request: Request, label_id: str):
    return _store(request).label(label_id)


@router.get("/trackers/{tracking_code}", response_model=Tracker, summary="Tracking status and scan history of a parcel")
async def get_tracker(request: Request, tracking_code: str):
    return _store(request).tracker(tracking_code)


def credentials(seed: int) -> Credentials:
    return Credentials(api_key=f"ck_{derive_secret('carrier', seed, 'api-key')}")


def create_app(seed: int = 0, *, master: MasterData | None = None, clock: Clock | None = None, **system_options):
    return create_fake(
        "carrier", CarrierStore, credentials, seed=seed, master=master, clock=clock,
        title="Fake carrier",
        description="Return labels and parcel tracking, shaped after EasyPost and Shippo. "
        "Authenticate with `Authorization: Bearer <API key>`.",
        routers=[router],
        **system_options,
    )
