"""Live mode end to end over real sockets: the world serves the fakes, steps the model in scaled
real time and delivers every fact, signed, to a test double of an integration layer, which
approves returns over HTTP. Deliveries it refuses are retried; every attempt is journaled."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.delivery import SignatureError, verify
from simulators.scenario import Scenario
from simulators.serving import _bind, _Server
from simulators.world import World

import uvicorn

SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXRoZS1saXZlLXdvcmxk"
SCENARIO = {
    "name": "live-test",
    "time_scale": 40_000,  # a simulated day in about 2 wall seconds
    "volumes": {"days": 0.5, "returns_per_day": 60},
    "customer": {"cancel_rate": 0, "never_ship_rate": 0, "late_request_rate": 0, "ship_delay_days_median": 0.3},
    "carrier": {"transit_days_median": 0.4, "exception_rate": 0, "return_to_sender_rate": 0},
}


class IntegrationDouble:
    """Refuses the first delivery of every return.created (500), then approves the return:
    buys a label from the carrier and moves the portal return to approved."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.bad_signatures = 0
        self.refused: set[str] = set()
        self.env: dict[str, str] = {}
        self.app = Starlette(routes=[Route("/webhooks", self.webhook, methods=["POST"])])

    async def webhook(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify(dict(request.headers), body, SECRET, now_unix=time.time())
        except SignatureError:
            self.bad_signatures += 1
            return Response(status_code=401)
        event = orjson.loads(body)
        self.received.append(event)
        if event["type"] == "return.created":
            if event["id"] not in self.refused:
                self.refused.add(event["id"])
                return Response(status_code=500)
            await self.approve(event)
        return Response(status_code=204)

    async def approve(self, event: dict) -> None:
        ret = event["data"]
        rma_id = f"RMA-9{ret['id'][4:]}"
        headers = {"X-Correlation-ID": event["correlation_id"]}
        async with httpx.AsyncClient(timeout=5) as client:
            label = await client.post(f"{self.env['RH_CARRIER_URL']}/labels", headers={**headers, "Authorization": f"Bearer {self.env['RH_CARRIER_API_KEY']}"}, json={
                "rma_id": rma_id, "to_site_id": "WH-EAST", "parcel": {"weight_g": 900},
                "from_address": {"street": "1 Main St", "city": "Columbus", "region": "OH", "postal_code": "43210"},
            })
            label.raise_for_status()
            lbl = label.json()
            r = await client.patch(f"{self.env['RH_RETURNS_PORTAL_URL']}/returns/{ret['id']}", headers={**headers, "Authorization": f"Bearer {self.env['RH_RETURNS_PORTAL_API_KEY']}"}, json={
                "status": "approved", "rma_id": rma_id,
                "label": {"carrier": lbl["carrier"], "tracking_code": lbl["tracking_code"], "label_url": lbl["label_url"]},
            })
            r.raise_for_status()


@pytest.fixture(scope="module")
def live_run():
    double = IntegrationDouble()
    world = World(Scenario.model_validate(SCENARIO), live=True)

    async def main():
        sock = _bind("127.0.0.1", 0, "integration double")
        server = _Server(uvicorn.Config(double.app, log_level="warning", access_log=False, lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks"

        async def started(fleet):
            double.env = fleet.env()

        try:
            await asyncio.wait_for(world.run_live(webhook_url=url, secret=SECRET, on_started=started, settle_limit_days=6), 120)
        finally:
            server.should_exit = True
            await serving

    asyncio.run(main())
    return world, double


def test_every_return_travels_once_the_double_approved_it(live_run):
    world, _ = live_run
    outcomes = {e.outcome for e in world.expectations.values()}
    assert world.model.requested >= 15
    # The double never refunds, so returns get as far as inspection and wait there.
    assert outcomes == {"stalled:awaiting-refund"}


def test_events_arrive_signed_with_their_correlation_id(live_run):
    world, double = live_run
    assert double.bad_signatures == 0
    types = {e["type"] for e in double.received}
    assert types == {"return.created", "tracking.updated", "receipt.completed", "inspection.completed"}
    returns = {r for r in world.expectations}
    assert {e["correlation_id"] for e in double.received} == returns


def test_refused_deliveries_are_retried_and_every_attempt_is_journaled(live_run):
    world, double = live_run
    created = [a for a in world.deliverer.journal if a.event_type == "return.created"]
    by_event: dict[str, list] = {}
    for attempt in created:
        by_event.setdefault(attempt.event_id, []).append(attempt)
    assert len(by_event) == world.model.requested
    for attempts in by_event.values():
        assert [a.status for a in attempts] == [500, 204]
        assert [a.attempt for a in attempts] == [1, 2]
    stats = world.deliverer.stats()
    assert stats["pending"] == 0 and stats["failed"] == 0
    assert world.deliverer.latency_percentiles()["corrected"]["count"] == len(world.deliverer.journal)


def test_the_fakes_journaled_the_doubles_calls_with_correlation_ids(live_run):
    world, _ = live_run
    patches = world.apps["returns_portal"].state.system.journal.find()
    approved = [e for e in patches if e["method"] == "PATCH" and e["status"] == 200]
    assert len(approved) == world.model.requested
    assert all(e["correlation_id"] == e["path"].rsplit("/", 1)[1] for e in approved)
