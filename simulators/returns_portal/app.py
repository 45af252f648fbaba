"""HTTP API of the fake returns portal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from simulators.clock import Clock
from simulators.domain import ReturnStatus
from simulators.fakekit.app import call_context, create_fake
from simulators.fakekit.auth import Credentials, derive_secret
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.routes import fake_router
from simulators.returns_portal.store import (
    PortalReturn,
    ReturnRequest,
    ReturnsPortalStore,
    ReturnUpdate,
    StatusChange,
)
from simulators.seed import MasterData, ReturnPolicy, SalesOrder

customer_router = fake_router(tags=["customer side"])
integration_router = fake_router(tags=["integration side"])


def _store(request: Request) -> ReturnsPortalStore:
    return request.app.state.system.store


@customer_router.post("/returns", response_model=PortalReturn, status_code=201, summary="Start a return for delivered order lines")
async def create_return(request: Request, body: ReturnRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_return(body, ctx)


@customer_router.post(
    "/returns/{return_id}/cancel",
    response_model=PortalReturn,
    status_code=200,
    summary="The customer cancels a requested or approved return (409 otherwise)",
)
async def cancel_return(request: Request, return_id: str, ctx: CallContext = Depends(call_context)):
    return _store(request).cancel(return_id, ctx)


@integration_router.get("/returns", response_model=list[PortalReturn], status_code=200, summary="Returns, oldest first, optionally filtered")
async def list_returns(
    request: Request,
    status: Annotated[ReturnStatus | None, Query()] = None,
    order_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=100, description="Only returns with an id after this one (paging)")] = None,
):
    return _store(request).find(status, order_id, limit, after)


@integration_router.get("/returns/{return_id}", response_model=PortalReturn, status_code=200, summary="One return")
async def get_return(request: Request, return_id: str):
    return _store(request).get(return_id)


@integration_router.get(
    "/returns/{return_id}/history",
    response_model=list[StatusChange],
    status_code=200,
    summary="Every status change of a return: from, to, at, caller, correlation id",
)
async def get_history(request: Request, return_id: str):
    return _store(request).status_history(return_id)


@integration_router.patch(
    "/returns/{return_id}",
    response_model=PortalReturn,
    status_code=200,
    summary="Move a return to a status (any move is accepted and recorded, regressions included)",
)
async def update_return(
    request: Request,
    return_id: str, body: ReturnUpdate, ctx: CallContext = Depends(call_context)
):
    return _store(request).update(return_id, body, ctx)


@integration_router.get("/policy", response_model=ReturnPolicy, status_code=200, summary="The merchant's published return policy")
async def get_policy(request: Request):
    return _store(request).policy()


@integration_router.get("/orders/{order_id}", response_model=SalesOrder, status_code=200, summary="The portal's copy of an order (the ERP's order)")
async def get_order(request: Request, order_id: str):
    return _store(request).order(order_id)


def credentials(seed: int) -> Credentials:
    return Credentials(api_key=f"pk_{derive_secret('returns_portal', seed, 'api-key')}")


def create_app(seed: int = 0, *, master: MasterData | None = None, clock: Clock | None = None, **system_options):
    return create_fake(
        "returns_portal", ReturnsPortalStore, credentials, seed=seed, master=master, clock=clock,
        title="Fake returns portal",
        description="The returns SaaS shoppers start returns in, shaped after Loop, AfterShip and Narvar: "
        "a customer side that creates and cancels returns, and an integration side that reads them, "
        "reads the policy and moves returns through their statuses. "
        "Authenticate with `Authorization: Bearer <API key>`.",
        routers=[customer_router, integration_router],
        **system_options,
    )
