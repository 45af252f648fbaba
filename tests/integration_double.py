"""A test double of an integration layer, for live-mode tests: verifies signatures, refuses
the first delivery of every return.created, then approves the return over HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.delivery import SignatureError, verify
from simulators.serving import _bind, _Server
from simulators.world import World

SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXRoZS1saXZlLXdvcmxk"
class IntegrationDouble:
    """Refuses the first delivery of every return.created (500), then approves the return:
    buys a label from the carrier and moves the portal return to approved."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.bad_signatures = 0
        self.malformed = 0
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
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.malformed += 1
            return Response(status_code=400)
        self.received.append(event)
        if event["type"] == "return.created":
            if event["id"] not in self.refused:
                self.refused.add(event["id"])
                return Response(status_code=500)
            try:
                await self.approve(event)
            except httpx.HTTPStatusError:
                return Response(status_code=503)  # a fake failed us: have the event redelivered
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




def run_live(world: World, double: IntegrationDouble, timeout_s: float = 120) -> None:
    """Serve the double, run the world live against it, stop the double."""

    async def main():
        sock = _bind("127.0.0.1", 0, "integration double")
        server = _Server(uvicorn.Config(double.app, log_level="warning", access_log=False, lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks"

        async def started(fleet):
            double.env = fleet.env()

        try:
            await asyncio.wait_for(world.run_live(webhook_url=url, secret=SECRET, on_started=started, settle_limit_days=6), timeout_s)
        finally:
            server.should_exit = True
            await serving

    asyncio.run(main())
