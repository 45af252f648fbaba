"""A scripted world for the reference's tests: creates returns on the fakes, sends the events a
world would send (signed, or not, when and as often as the test says) and reads the results.

The model drives whole seasons; these tests need one return and one precise fault at a time.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import httpx
import orjson

from simulators.delivery.signing import derived_key, secret_key, signature_header
from simulators.seed import master_data
from simulators.serving import FakeFleet
from tests.reference_process import SECRET, ReferenceProcess, wait_until

WAIT_S = 30.0


class Script:
    def __init__(self, fleet: FakeFleet, ref: ReferenceProcess, seed: int) -> None:
        self.env, self.ref = fleet.env(), ref
        self.master = master_data(seed)
        self.http = httpx.Client(timeout=10)
        self._event_ids = itertools.count(1)

    def close(self) -> None:
        self.http.close()

    # -- the fakes, as the world and the warehouse floor use them ------------------------------

    def _call(self, system: str, method: str, path: str, **kwargs) -> httpx.Response:
        env = self.env
        if system == "erp":
            token = self.http.post(env["RH_ERP_TOKEN_URL"], data={
                "grant_type": "client_credentials", "client_id": env["RH_ERP_CLIENT_ID"], "client_secret": env["RH_ERP_CLIENT_SECRET"],
            }).json()["access_token"]
        else:
            token = env[f"RH_{system.upper()}_API_KEY"]
        return self.http.request(method, f"{env[f'RH_{system.upper()}_URL']}{path}",
                                 headers={"Authorization": f"Bearer {token}"}, **kwargs)

    def get(self, system: str, path: str, **params) -> dict | list:
        response = self._call(system, "GET", path, params=params)
        response.raise_for_status()
        return response.json()

    def add_fault(self, system: str, **spec) -> dict:
        response = self.http.post(f"{self.env[f'RH_{system.upper()}_URL']}/__admin/faults", json=spec)
        response.raise_for_status()
        return response.json()

    def heal(self) -> None:
        for system in ("erp", "wms", "carrier", "returns_portal"):
            self.http.delete(f"{self.env[f'RH_{system.upper()}_URL']}/__admin/faults").raise_for_status()

    def orders(self, *, eligible: bool = True):
        """Delivered orders of active customers, inside the return window or past it."""
        now = self.master.config.epoch
        for order in self.master.orders.values():
            if order.delivered_at is None or order.delivered_at > now:
                continue
            if self.master.customers[order.customer_id].account_status.value != "active":
                continue
            inside = now - order.delivered_at < timedelta(days=25)
            if inside == eligible:
                yield order

    def new_return(self, order, *, resolution: str = "refund", reason: str = "size_fit") -> dict:
        customer = self.master.customers[order.customer_id]
        lines = [{"line_number": line.line_number, "quantity": line.quantity, "reason": reason} for line in order.lines]
        response = self._call("returns_portal", "POST", "/returns", json={
            "order_id": order.id, "customer_email": customer.email, "lines": lines, "resolution": resolution,
        })
        assert response.status_code == 201, response.text
        return response.json()

    def receive(self, ret: dict) -> dict:
        rma = self.rmas(ret["id"])[0]
        response = self._call("wms", "POST", "/receipts", json={
            "site_id": rma["site_id"], "rma_id": rma["id"],
            "lines": [{"item_id": line["item_id"], "quantity": line["quantity"]} for line in rma["lines"]],
        })
        assert response.status_code == 201, response.text
        return response.json()

    def inspect(self, receipt: dict, condition: str = "new", disposition: str = "restock") -> dict:
        lines = []
        for line in receipt["lines"]:
            item = self.master.items[line["item_id"]]
            serials = [f"SN-{receipt['id']}-{line['item_id']}-{n}" for n in range(line["quantity"])] if item.serial_controlled else None
            lines.append({"item_id": line["item_id"], "quantity": line["quantity"], "condition": condition,
                          "disposition": disposition, "serial_numbers": serials})
        response = self._call("wms", "POST", "/inspections", json={"receipt_id": receipt["id"], "lines": lines})
        assert response.status_code == 201, response.text
        return response.json()

    # -- events to the reference ----------------------------------------------------------------

    def event(self, event_type: str, data: dict, return_id: str, *, event_id: str | None = None, occurred_at: str | None = None) -> dict:
        return {
            "id": event_id or f"evt_t{next(self._event_ids):05d}",
            "type": event_type,
            "occurred_at": occurred_at or data.get("occurred_at") or data.get("created_at") or data.get("requested_at"),
            "correlation_id": return_id,
            "data": data,
        }

    def send(self, event: dict, *, forged: bool = False, skew_s: int = 0, body: bytes | None = None) -> httpx.Response:
        body = body if body is not None else orjson.dumps(event)
        timestamp = int(time.time()) + skew_s
        key = secret_key(SECRET)
        if forged:
            key = derived_key(key, "forged")
        headers = {
            "webhook-id": event["id"], "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(event["id"], timestamp, body, [key]),
            "content-type": "application/json",
        }
        return self.http.post(f"{self.ref.url}/webhooks", content=body, headers=headers)

    def created(self, ret: dict) -> dict:
        return self.event("return.created", ret, ret["id"])

    def scan(self, ret: dict, status: str, occurred_at: str) -> dict:
        portal = self.get("returns_portal", f"/returns/{ret['id']}")
        return self.event("tracking.updated", {
            "tracking_code": portal["label"]["tracking_code"], "carrier": portal["label"]["carrier"], "rma_id": portal["rma_id"],
            "status": status, "previous_status": None, "message": status, "location": "Hub", "occurred_at": occurred_at,
        }, ret["id"])

    # -- what happened --------------------------------------------------------------------------

    def status(self, return_id: str) -> str:
        return self.get("returns_portal", f"/returns/{return_id}")["status"]

    def wait_status(self, return_id: str, status: str, timeout_s: float = WAIT_S) -> None:
        wait_until(lambda: self.status(return_id) == status, timeout_s, what=f"{return_id} {status}")

    def wait_idle(self, timeout_s: float = WAIT_S) -> None:
        """Until the reference has nothing left to run now (pending jobs 0)."""
        def idle() -> bool:
            text = self.http.get(f"{self.ref.url}/metrics").text
            return "reference_jobs_pending 0.0" in text
        wait_until(idle, timeout_s, what="the reference idle")

    def rmas(self, return_id: str) -> list[dict]:
        return self.get("erp", "/return-authorizations", external_reference=return_id)

    def memos(self, rma_id: str) -> list[dict]:
        return self.get("erp", "/credit-memos", return_authorization_id=rma_id)

    def adjustments(self, rma_id: str) -> list[dict]:
        return self.get("erp", "/inventory-adjustments", return_authorization_id=rma_id)

    def history(self, return_id: str) -> list[dict]:
        return self.get("returns_portal", f"/returns/{return_id}/history")

    def metric(self, name: str) -> float:
        for line in self.http.get(f"{self.ref.url}/metrics").text.splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def approved(script: Script, order) -> dict:
    ret = script.new_return(order)
    assert script.send(script.created(ret)).status_code == 200
    script.wait_status(ret["id"], "approved")
    return ret


def through_inspection(script: Script, ret: dict, condition: str = "new", disposition: str = "restock") -> tuple[dict, dict]:
    receipt = script.receive(ret)
    assert script.send(script.event("receipt.completed", receipt, ret["id"])).status_code == 200
    script.wait_status(ret["id"], "received")
    inspection = script.inspect(receipt, condition, disposition)
    assert script.send(script.event("inspection.completed", inspection, ret["id"])).status_code == 200
    return receipt, inspection
