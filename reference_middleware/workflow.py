"""The return-to-credit workflow of docs/CONTRACT.md ("The rules of each step"), one handler
per event type.

A handler may run more than once for the same event (after a crash, a failed call, a wait),
so every write is a *step*: looked up first, done only if missing, recorded once it succeeded,
and sent with an Idempotency-Key derived from the return and the step, so that a write whose
answer was lost is replayed by the fake rather than done twice. A handler that needs an
earlier fact (an inspection before its receipt) raises :class:`Wait`; the job sleeps until
another job of the same return finishes.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from reference_middleware.clients import Fakes
from reference_middleware.defects import Defect
from reference_middleware.settings import Settings
from reference_middleware.store import Job, Repository

# How far along its life each portal status is; a return never moves to a lower rank.
RANK = {"requested": 0, "approved": 1, "rejected": 1, "cancelled": 1, "in_transit": 2, "received": 3, "refunded": 4, "closed": 5}
MOVING_SCANS = {"in_transit", "out_for_delivery", "delivered"}
STOCK_STATUS = {"restock": "available", "refurbish": "refurbish", "quarantine": "quarantine", "scrap": "scrap"}
MAX_PARCEL_G = 70_000


class Wait(Exception):
    """The job needs a fact that has not arrived yet."""


class Later(Exception):
    """The job must not go on before ``due_at`` (wall time): it runs again then."""

    def __init__(self, due_at: float, reason: str) -> None:
        super().__init__(reason)
        self.due_at = due_at


def half_up(numerator: int, denominator: int) -> int:
    return (numerator + denominator // 2) // denominator


def refund_cents(policy: dict, unit_price: int, quantity: int, condition: str, reason: str, *, with_fee: bool = True) -> int:
    """The policy's refund for some units of one line (docs/CONTRACT.md, "Money")."""
    value = unit_price * quantity
    refund = half_up(value * policy["refund_percent_by_condition"].get(condition, 0), 100)
    fee = 0
    if with_fee and condition in policy["restocking_fee_conditions"] and reason not in policy["fee_exempt_reasons"]:
        fee = half_up(value * policy["restocking_fee_bps"], 10_000)
    return max(0, refund - fee)


class Work:
    """One job's view of its return: its recorded steps, and how to do a new one."""

    def __init__(self, flow: Workflow, job: Job) -> None:
        self.flow, self.job, self.return_id = flow, job, job.return_id
        self.repo = flow.repo

    async def get(self, name: str) -> Any | None:
        return await self.repo.step(self.return_id, name)

    async def remember(self, name: str, value: Any) -> None:
        await self.repo.record(self.return_id, name, value)

    async def step(self, name: str, action: Callable[[str | None], Awaitable[Any]], *, per_delivery: bool = False) -> Any:
        """Do ``action`` once per return (or, ``per_delivery``, once per job), keep its result."""
        scoped = f"{name}@job{self.job.id}" if per_delivery or self.flow.has(Defect.NO_DEDUPE) else name
        done = await self.get(scoped)
        if done is not None:
            return done
        if self.flow.has(Defect.SLOW):
            await asyncio.sleep(self.flow.settings.slow_ms / 1000)
        key = None if self.flow.has(Defect.NO_IDEMPOTENCY_KEY) else f"{self.return_id}:{scoped}"
        result = await action(key)
        await self.remember(scoped, result)
        if scoped != name:
            await self.remember(name, result)  # later steps read the latest under the plain name
        return result

    async def hold(self, name: str, hours: float) -> None:
        """Let the job go on only ``hours`` of business time after it first got here (a batch
        job, imitated by a delay on the harness's business clock)."""
        now, time_scale = await self.flow.fakes.business_clock(self.flow.settings.clock_url)
        due = await self.get(name)
        if due is None:
            due = now.timestamp() + hours * 3600
            await self.remember(name, due)
        if now.timestamp() < due:
            raise Later(time.time() + (due - now.timestamp()) / time_scale, f"{name}: held until the batch runs")

    async def portal_status(self) -> str:
        return ((await self.get("portal")) or {}).get("status", "requested")

    async def move(self, status: str, **fields: Any) -> None:
        """PATCH the portal return to ``status``, unless it is already there or further along."""
        current = await self.portal_status()
        # A move already tried further along may have happened (its answer lost): never undo it.
        tried = (await self.get("portal:tried")) or current
        if (RANK[status] <= RANK[current] or RANK[status] < RANK[tried]) and not self.flow.has(Defect.TRUSTS_ORDER):
            return
        if RANK[status] > RANK[tried]:
            await self.remember("portal:tried", status)

        async def patch(_key: str | None) -> Any:
            return await self.flow.fakes.portal.call(
                "PATCH", f"/returns/{self.return_id}", json={"status": status, **fields}, correlation_id=self.return_id
            )

        # Under trusts-order each delivery may move the return again, even backwards.
        await self.step(f"portal:{status}", patch, per_delivery=self.flow.has(Defect.TRUSTS_ORDER))
        if RANK[status] > RANK[current] or self.flow.has(Defect.TRUSTS_ORDER):
            await self.remember("portal", {"status": status})


class Workflow:
    def __init__(self, settings: Settings, repo: Repository, fakes: Fakes) -> None:
        self.settings, self.repo, self.fakes = settings, repo, fakes
        self._policy: dict | None = None
        self._items: dict[str, dict] = {}
        self.handlers: dict[str, Callable[[Work, dict], Awaitable[None]]] = {
            "return.created": self.return_created,
            "return.cancelled": self.return_cancelled,
            "tracking.updated": self.tracking_updated,
            "receipt.completed": self.receipt_completed,
            "inspection.completed": self.inspection_completed,
        }

    def has(self, defect: Defect) -> bool:
        return defect in self.settings.defects

    async def run(self, job: Job) -> None:
        await self.handlers[job.kind](Work(self, job), job.payload)

    # -- reads (cached where the data never changes) ------------------------------------------

    async def policy(self, rid: str) -> dict:
        if self._policy is None:
            self._policy = await self.fakes.portal.call("GET", "/policy", correlation_id=rid)
        return self._policy

    async def item(self, item_id: str, rid: str) -> dict:
        if item_id not in self._items:
            self._items[item_id] = await self.fakes.erp.call("GET", f"/items/{item_id}", correlation_id=rid)
        return self._items[item_id]

    # -- the handlers -------------------------------------------------------------------------

    async def return_created(self, w: Work, ret: dict) -> None:
        rid, erp = w.return_id, self.fakes.erp
        # The portal is the source of truth: a return it does not know (404: a bug, or a signed event
        # for a return nobody requested) gets nothing, and its record is used rather than the event's.
        ret = await w.step("portal-return", lambda _key: self.fakes.portal.call("GET", f"/returns/{rid}", correlation_id=rid))
        await w.remember("return", ret)
        ignores = self.has(Defect.IGNORES_CANCELLATION)
        if ret["status"] == "cancelled" and not ignores:
            await w.remember("cancelled", True)  # cancelled before we got to it: nothing to do, ever
        if await w.get("cancelled") and not ignores:
            return
        verdict = await w.step("eligibility", lambda _key: self.eligibility(rid, ret))
        if not verdict["eligible"]:
            await w.move("rejected", rejection_reason=verdict["reason"])
            return
        if self.has(Defect.RMA_BATCH) and await w.get("rma") is None:
            await w.hold("rma-batch", self.settings.rma_hold_h)
        rma = await w.step("rma", lambda key: erp.call("POST", "/return-authorizations", correlation_id=rid, idempotency_key=key, json={
            "sales_order_id": ret["order_id"],
            "external_reference": rid,
            "lines": [{"line_number": l["line_number"], "quantity": l["quantity"], "reason": l["reason"]} for l in ret["lines"]],
        }))
        weight = 0
        for line in rma["lines"]:
            weight += (await self.item(line["item_id"], rid))["weight_g"] * line["quantity"]
        label = await w.step("label", lambda key: self.fakes.carrier.call("POST", "/labels", correlation_id=rid, idempotency_key=key, json={
            "rma_id": rma["id"],
            "from_address": verdict["address"],
            "to_site_id": rma["site_id"],
            "parcel": {"weight_g": min(MAX_PARCEL_G, max(1, weight))},
            "service": "ground",
            "is_return": True,
        }))
        if not self.has(Defect.SKIPS_ASN):
            await w.step("asn", lambda key: self.fakes.wms.call("POST", "/expected-receipts", correlation_id=rid, idempotency_key=key, json={
                "rma_id": rma["id"],
                "site_id": rma["site_id"],
                "tracking_code": label["tracking_code"],
                "lines": [{"item_id": l["item_id"], "quantity": l["quantity"]} for l in rma["lines"]],
            }))
        # The customer may have cancelled while we worked: the portal would let us approve anyway.
        current = await self.fakes.portal.call("GET", f"/returns/{rid}", correlation_id=rid)
        if current["status"] == "cancelled" and not self.has(Defect.IGNORES_CANCELLATION):
            await w.remember("cancelled", True)
            return
        await w.move("approved", rma_id=rma["id"], label={
            "carrier": label["carrier"], "tracking_code": label["tracking_code"], "label_url": label["label_url"],
        })

    async def eligibility(self, rid: str, ret: dict) -> dict:
        order = await self.fakes.erp.call("GET", f"/sales-orders/{ret['order_id']}", correlation_id=rid)
        customer = await self.fakes.erp.call("GET", f"/customers/{ret['customer_id']}", correlation_id=rid)
        policy = await self.policy(rid)
        verdict = {"eligible": False, "reason": None, "address": customer["address"]}
        if customer["account_status"] == "on_hold":
            return {**verdict, "reason": "customer account on hold"}
        if not order.get("delivered_at"):
            return {**verdict, "reason": "order not delivered"}
        age_days = (datetime.fromisoformat(ret["requested_at"]) - datetime.fromisoformat(order["delivered_at"])).total_seconds() / 86_400
        if age_days > policy["window_days"]:
            return {**verdict, "reason": f"requested {age_days:.1f} days after delivery; the window is {policy['window_days']} days"}
        return {**verdict, "eligible": True}

    async def return_cancelled(self, w: Work, data: dict) -> None:
        if not self.has(Defect.IGNORES_CANCELLATION):
            await w.remember("cancelled", True)

    async def _approved(self, w: Work) -> None:
        if RANK[await w.portal_status()] < RANK["approved"] and not self.has(Defect.TRUSTS_ORDER):
            raise Wait("the return is not approved yet")

    async def tracking_updated(self, w: Work, scan: dict) -> None:
        if scan["status"] not in MOVING_SCANS:
            return
        await self._approved(w)
        await w.move("in_transit")

    async def receipt_completed(self, w: Work, receipt: dict) -> None:
        await self._approved(w)
        await w.remember("receipt", receipt)
        if self.has(Defect.REFUND_BEFORE_INSPECTION):
            # Refund what arrived, as if it were all new, before anyone graded it.
            graded = [{**units, "condition": "new"} for units in receipt["lines"]]
            await w.move("received")
            await self.settle_money(w, graded)
            return
        await w.move("received")

    async def inspection_completed(self, w: Work, inspection: dict) -> None:
        if await w.get("receipt") is None and not self.has(Defect.TRUSTS_ORDER):
            raise Wait("the inspection came before its receipt")
        rma = await w.get("rma")
        if rma is None:
            raise Wait("no RMA yet")
        rid, erp = w.return_id, self.fakes.erp
        stock: dict[tuple[str, str], int] = defaultdict(int)
        to_vendor: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for line in inspection["lines"]:
            if line["disposition"] == "return_to_vendor":
                vendor = (await self.item(line["item_id"], rid))["vendor_id"]
                to_vendor[vendor][line["item_id"]] += line["quantity"]
            else:
                stock[line["item_id"], STOCK_STATUS[line["disposition"]]] += line["quantity"]
        # Stock moves where the units are: the inspecting site, which a rerouted parcel makes another than the RMA's.
        site = rma["site_id"] if self.has(Defect.STOCK_AT_RMA_SITE) else inspection["site_id"]
        for (item_id, status), quantity in sorted(stock.items()):
            body = {"item_id": item_id, "site_id": site, "stock_status": status, "quantity": quantity,
                    "reason": f"return {rma['id']} inspected", "return_authorization_id": rma["id"]}
            await w.step(f"adjust:{inspection['id']}:{item_id}:{status}",
                         lambda key, body=body: erp.call("POST", "/inventory-adjustments", json=body, correlation_id=rid, idempotency_key=key),
                         per_delivery=self.has(Defect.DOUBLE_RESTOCK))
        if self.has(Defect.SKIPS_SUPPLIER_CLAIM):
            to_vendor.clear()  # the units still left stock; nobody claims them back
        for vendor, units in sorted(to_vendor.items()):
            body = {"vendor_id": vendor, "return_authorization_id": rma["id"], "reason": "return to vendor",
                    "lines": [{"item_id": i, "quantity": q} for i, q in sorted(units.items())]}
            await w.step(f"claim:{inspection['id']}:{vendor}",
                         lambda key, body=body: erp.call("POST", "/supplier-claims", json=body, correlation_id=rid, idempotency_key=key))
        await self.settle_money(w, inspection["lines"])
        if self.has(Defect.BATCH_CLOSING) and RANK[await w.portal_status()] < RANK["closed"]:
            await w.hold("close-batch", self.settings.close_hold_h)
        await w.move("closed")

    async def settle_money(self, w: Work, graded: list[dict]) -> None:
        """The exchange's replacement order, or the credit memo and the refunded status."""
        rid, erp = w.return_id, self.fakes.erp
        rma, ret = await w.get("rma"), await w.get("return")
        if ret is None:
            raise Wait("return.created not processed yet")
        if ret["resolution"] == "exchange":
            if self.has(Defect.NO_REPLACEMENT):
                return
            units: dict[str, int] = defaultdict(int)
            for line in graded:
                units[line["item_id"]] += line["quantity"]
            await w.step("replacement", lambda key: erp.call("POST", "/sales-orders", correlation_id=rid, idempotency_key=key, json={
                "customer_id": rma["customer_id"], "site_id": rma["site_id"], "replacement_for": rma["id"],
                "lines": [{"item_id": i, "quantity": q} for i, q in sorted(units.items())],
            }))
            return
        policy = await self.policy(rid)
        rma_line = {line["item_id"]: line for line in rma["lines"]}
        quantity: dict[int, int] = defaultdict(int)
        amount: dict[int, int] = defaultdict(int)
        for line in graded:
            ordered = rma_line[line["item_id"]]
            number = ordered["line_number"]
            quantity[number] += line["quantity"]
            amount[number] += refund_cents(policy, ordered["unit_price"]["amount"], line["quantity"], line["condition"],
                                           ordered["reason"], with_fee=not self.has(Defect.WRONG_REFUND_AMOUNT))
        if self.has(Defect.NIGHTLY_REFUNDS) and await w.get("credit-memo") is None:
            await w.hold("refund-batch", self.settings.refund_hold_h)
        memo = await w.step("credit-memo", lambda key: erp.call("POST", "/credit-memos", correlation_id=rid, idempotency_key=key, json={
            "return_authorization_id": rma["id"],
            "lines": [{"line_number": n, "quantity": quantity[n], "amount": {"amount": amount[n], "currency": rma["currency"]}}
                      for n in sorted(quantity)],
        }))
        if not self.has(Defect.SKIPS_REFUNDED):
            await w.move("refunded", refund={"amount": memo["total"], "credit_memo_id": memo["id"]})
