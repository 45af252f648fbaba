"""``/__admin``: the journal, the state, the fault hooks and reset, for tests and the world.

Not part of the API an integration layer uses; unauthenticated, as fakes run on loopback.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from simulators.fakekit.hooks import FaultRule, FaultRuleSpec
from simulators.fakekit.journal import JournalQuery
from simulators.fakekit.problems import Problem, not_found


class JournalPage(BaseModel):
    entries: list[dict[str, Any]]
    in_memory: int
    spilled: int


class JournalSummaryRow(BaseModel):
    method: str
    route: str
    status: int
    count: int


LOOPBACK = ("127.", "::1", "localhost")


def guard(request: Request) -> None:
    """The admin API can reset the fakes and inject outages: on loopback, for loopback clients
    only; served beyond it, for callers with the fleet's admin token (``Authorization: Bearer``)."""
    token = request.app.state.system.admin_token
    if token is None:
        client = request.client.host if request.client else ""
        if not client.startswith(LOOPBACK) and client != "testclient":
            raise Problem(403, "admin-loopback-only", "The admin API answers loopback clients only.")
        return
    given = request.headers.get("authorization", "").removeprefix("Bearer ")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(401, "admin-token-required", "The admin API wants the fleet's admin token: Authorization: Bearer <RH_ADMIN_TOKEN>.",
                      headers={"WWW-Authenticate": 'Bearer realm="returns-harness admin"'})


def admin_router() -> APIRouter:
    router = APIRouter(prefix="/__admin", tags=["admin"], dependencies=[Depends(guard)])

    @router.get("/journal", response_model=JournalPage, summary="Requests received, oldest first")
    async def journal(
        request: Request,
        method: str | None = None,
        path: Annotated[str | None, Query(description="Path prefix, or a glob when it has * ? [")] = None,
        status: Annotated[str | None, Query(pattern=r"^([1-5][0-9][0-9]|[1-5]xx)$", description="e.g. 201 or 4xx")] = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        since: Annotated[int, Query(ge=0, description="Only entries with seq above this")] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        include_spilled: bool = False,
    ) -> JournalPage:
        j = request.app.state.system.journal
        query = JournalQuery(
            method=method, path=path, status=status, correlation_id=correlation_id,
            idempotency_key=idempotency_key, since=since, limit=limit,
        )
        return JournalPage(entries=j.find(query, include_spilled=include_spilled), in_memory=len(j), spilled=j.spilled)

    @router.get("/journal/summary", response_model=list[JournalSummaryRow], summary="Request counts by route and status, evicted entries included")
    async def journal_summary(request: Request):
        return request.app.state.system.journal.summary_rows()

    @router.get("/state", summary="Everything this system holds")
    async def state(request: Request) -> dict[str, Any]:
        return request.app.state.system.store.snapshot()

    @router.post("/reset", status_code=204, summary="Back to the seeded state: store, journal, faults, tokens, keys")
    async def reset(request: Request) -> Response:
        request.app.state.system.reset()
        return Response(status_code=204)

    @router.get("/faults", response_model=list[FaultRule], summary="Active fault rules, with match and fire counts")
    async def faults(request: Request):
        return list(request.app.state.system.hooks.rules.values())

    @router.post("/faults", response_model=FaultRule, status_code=201, summary="Add a fault rule")
    async def add_fault(request: Request, spec: FaultRuleSpec):
        return request.app.state.system.hooks.add(spec)

    @router.delete("/faults/{rule_id}", status_code=204, summary="Remove one fault rule")
    async def remove_fault(request: Request, rule_id: str) -> Response:
        if not request.app.state.system.hooks.remove(rule_id):
            raise not_found("fault rule", rule_id)
        return Response(status_code=204)

    @router.delete("/faults", status_code=204, summary="Remove every fault rule (heal)")
    async def clear_faults(request: Request) -> Response:
        request.app.state.system.hooks.clear()
        return Response(status_code=204)

    @router.get("", summary="What the admin API offers (the URL `returns-harness fakes` prints)")
    async def index() -> dict[str, list[dict[str, str]]]:
        return {"endpoints": [{"method": method, "path": route.path, "summary": route.summary or ""}
                              for route in router.routes if route.path != "/__admin" for method in sorted(route.methods)]}

    return router
