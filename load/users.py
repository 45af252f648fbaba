"""The load's users: the world's sources of traffic, each on an intended schedule.

- :class:`Customer` requests a return in the portal, then delivers ``return.created``.
- :class:`Carrier` takes a return the integration layer approved with a label (read from the
  portal, its tracker from the carrier) and delivers its scans: in transit, then delivered.
- :class:`Warehouse` takes a parcel once its ASN is in the WMS, records the receipt and the
  inspection in the WMS and delivers ``receipt.completed`` and ``inspection.completed``.

Each user runs one task per *slot*, ``pace`` seconds apart, whether or not the previous one was
quick (open loop, as wrk2 does): when the layer stalls, the slots fall behind, the next tasks
run back to back and their latency counts from their slot, so the stall shows. Deliveries are
at least once: a share is delivered twice (same id), and a failed one is retried with its id.
"""

from __future__ import annotations

import time
from collections import deque

import gevent
import orjson
from locust import FastHttpUser, task

from load.journeys import Journey, grade, journey_of
from load.webhooks import envelope

RETRY_DELAYS_S = (0.5, 1.0, 2.0)


class Paced(FastHttpUser):
    abstract = True
    # One connection per fake and the layer is enough for a user that waits for each answer.
    concurrency = 4
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.ctx = self.environment.rh  # the run's context (load.locustfile.Context)
        self.slot = time.monotonic()

    def wait_time(self) -> float:
        self.slot += self.ctx.pace_s
        now = time.monotonic()
        if self.slot < now - 600:  # a user idle for ten minutes does not owe a burst
            self.slot = now
        return max(0.0, self.slot - now)

    # -- calls ---------------------------------------------------------------------------------

    def fake(self, method: str, system: str, path: str, name: str, json=None):
        """A call to a fake, as the world's source would make it; the answer or None (failed)."""
        ctx = self.ctx
        headers = ctx.auth[system]
        data = None
        if json is not None:  # orjson once, instead of Locust's json.dumps
            data = orjson.dumps(json)
            headers = ctx.auth_json[system]
        if method == "POST":  # a source's writes are keyed too, so the oracle counts only the layer's
            headers = {**headers, "idempotency-key": f"load:{ctx.event_id()}"}
        with self.client.request(method, ctx.fakes[system] + path, name=name, headers=headers, data=data,
                                 catch_response=True) as answer:
            status = answer.status_code
            if status is None or not 200 <= status < 300:
                answer.failure(f"{status}: {(answer.text or '')[:200]}")
                return None
            return orjson.loads(answer.content)

    def deliver(self, event_type: str, correlation_id: str, data: dict) -> bool:
        """Deliver one event, signed; retried with the same id until acknowledged or out of
        attempts. Each attempt goes to the process's delivery journal (:meth:`Context.attempt`):
        its latency from the slot (corrected, open loop) and from the send (uncorrected)."""
        ctx = self.ctx
        event_id = ctx.event_id()
        body = envelope(event_id, event_type, ctx.clock.now(), correlation_id, data)
        copies = 2 if ctx.rng.random() < ctx.duplicate_rate else 1
        acknowledged = False
        post, url, record, headers = self.client.post, ctx.webhook_url, ctx.attempt, ctx.signer.headers
        name = ctx.webhook_names.get(event_type) or f"webhook {event_type}"
        lateness = max(0.0, time.monotonic() - self.slot) if self.slot else 0.0
        for copy in range(copies):
            for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S)):
                if delay:
                    gevent.sleep(delay)
                sent_at = time.time()
                start = time.monotonic()
                with post(url, data=body, headers=headers(event_id, body, correlation_id), name=name, catch_response=True) as answer:
                    status = answer.status_code
                    end = time.monotonic()
                    ok = status is not None and 200 <= status < 300
                    # The first attempt is due at its slot; a retry when it was scheduled.
                    record(event_id, event_type, correlation_id, attempt + 1, status or None, end - start,
                           lateness if attempt == 0 and copy == 0 else 0.0, "duplicate" if copy else None, sent_at)
                    if not ok:
                        answer.failure(f"{status}: {(answer.text or '')[:200]}")
                if ok:
                    acknowledged = True
                    break
        return acknowledged


class Customer(Paced):
    weight = 1

    @task
    def request_return(self) -> None:
        ctx = self.ctx
        body = ctx.requests.next()
        if body is None:
            ctx.out_of_orders()
            return
        ret = self.fake("POST", "returns_portal", "/returns", "portal: POST /returns", json=body)
        if ret is None:
            return
        ctx.clock.calibrate(ret["requested_at"])
        journey = journey_of(ctx.master, ret)
        if self.deliver("return.created", ret["id"], ret):
            ctx.ledger.put(journey)
            if journey.eligible:
                ctx.to_carrier.append((time.monotonic() + ctx.ship_after_s, journey))


def _take(queue: deque):
    """The first item whose time has come, or None; an item not yet due stays in place."""
    if queue and queue[0][0] <= time.monotonic():
        return queue.popleft()[1]
    return None


class Carrier(Paced):
    weight = 1

    @task
    def scan(self) -> None:
        ctx = self.ctx
        journey: Journey | None = _take(ctx.to_carrier)
        if journey is None:
            return
        rid = journey.return_id
        ret = self.fake("GET", "returns_portal", f"/returns/{rid}", "portal: GET /returns/{id}")
        if ret is None or ret["status"] == "requested" or (ret["status"] == "approved" and not ret.get("label")):
            ctx.to_carrier.append((time.monotonic() + ctx.poll_s, journey))  # not approved yet: look again
            return
        if ret["status"] != "approved":
            return  # rejected or cancelled: no parcel
        code = ret["label"]["tracking_code"]
        tracker = self.fake("GET", "carrier", f"/trackers/{code}", "carrier: GET /trackers/{code}")
        if tracker is None:
            return
        previous = tracker["status"]
        for status, message in (("in_transit", "Picked up"), ("delivered", "Delivered to warehouse dock")):
            scan = {"tracking_code": code, "carrier": tracker["carrier"], "rma_id": tracker.get("rma_id") or ret["rma_id"],
                    "status": status, "previous_status": previous, "message": message, "location": None,
                    "occurred_at": ctx.clock.now().isoformat()}
            if not self.deliver("tracking.updated", rid, scan):
                return
            previous = status
        journey.stage = "scanned"
        ctx.ledger.put(journey)
        ctx.to_warehouse.append((time.monotonic() + ctx.receive_after_s, journey))


class Warehouse(Paced):
    weight = 1

    @task
    def receive_and_inspect(self) -> None:
        ctx = self.ctx
        journey: Journey | None = _take(ctx.to_warehouse)
        if journey is None:
            return
        rid = journey.return_id
        ret = self.fake("GET", "returns_portal", f"/returns/{rid}", "portal: GET /returns/{id}")
        asns = ret and self.fake("GET", "wms", f"/expected-receipts?rma_id={ret['rma_id']}", "wms: GET /expected-receipts")
        if not asns:
            ctx.to_warehouse.append((time.monotonic() + ctx.poll_s, journey))  # no ASN yet: look again
            return
        asn = asns[0]
        units = {line["item_id"]: line["quantity"] for line in asn["lines"]}
        receipt = self.fake("POST", "wms", "/receipts", "wms: POST /receipts", json={
            "site_id": asn["site_id"], "rma_id": ret["rma_id"], "tracking_code": asn.get("tracking_code"),
            "lines": [{"item_id": i, "quantity": q} for i, q in sorted(units.items())]})
        if receipt is None or not self.deliver("receipt.completed", rid, receipt):
            return
        journey.stage, journey.site_id, journey.received = "received", receipt["site_id"], units
        ctx.ledger.put(journey)
        graded = grade(ctx.rng, ctx.master, ctx.scenario, units, journey.reasons)
        lines = []
        for group, (item_id, quantity, condition, disposition) in enumerate(graded):
            line = {"item_id": item_id, "quantity": quantity, "condition": condition, "disposition": disposition}
            if ctx.master.items[item_id].serial_controlled:
                line["serial_numbers"] = [f"SN-{rid}-{group}-{n}" for n in range(quantity)]
            lines.append(line)
        inspection = self.fake("POST", "wms", "/inspections", "wms: POST /inspections",
                               json={"receipt_id": receipt["id"], "lines": lines})
        if inspection is None or not self.deliver("inspection.completed", rid, inspection):
            return
        journey.stage, journey.inspected = "inspected", graded
        ctx.ledger.put(journey)
