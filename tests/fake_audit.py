"""What an integration layer left in the fakes after a live run, read against the model's
expectations: a small stand-in for the oracle, enough for the reference's own tests."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from simulators.world import World


@dataclass
class Audit:
    rmas: Counter = field(default_factory=Counter)  # return id -> RMAs
    memos: Counter = field(default_factory=Counter)  # return id -> credit memos
    refunded: dict = field(default_factory=dict)  # return id -> cents credited
    stock: dict = field(default_factory=dict)  # return id -> {"item|site|status": units}
    claims: dict = field(default_factory=dict)  # return id -> {item: units}
    replacements: Counter = field(default_factory=Counter)
    regressions: list = field(default_factory=list)  # return ids whose portal status went back
    refunded_before_inspection: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)  # return id -> portal status
    expected: dict = field(default_factory=dict)  # return id -> Expectation

    def problems(self) -> dict[str, list]:
        """Every deviation from "exactly once, right amount, right stock, never backwards"."""
        found: dict[str, list] = defaultdict(list)
        for rid, exp in self.expected.items():
            if self.rmas[rid] > 1:
                found["duplicate RMA"].append(rid)
            if self.memos[rid] > 1:
                found["duplicate credit memo"].append(rid)
            if not exp.eligible and self.rmas[rid]:
                found["RMA for an ineligible return"].append(rid)
            if exp.outcome != "closed":
                continue
            if self.statuses.get(rid) != "closed":
                found["not closed"].append((rid, self.statuses.get(rid)))
            if exp.refund_cents != self.refunded.get(rid, 0):
                found["wrong refund"].append((rid, exp.refund_cents, self.refunded.get(rid, 0)))
            if exp.stock != self.stock.get(rid, {}):
                found["wrong stock"].append((rid, exp.stock, self.stock.get(rid, {})))
            if exp.supplier_claims != self.claims.get(rid, {}):
                found["wrong supplier claims"].append((rid, exp.supplier_claims, self.claims.get(rid, {})))
            if exp.replacement != bool(self.replacements[rid]) or self.replacements[rid] > 1:
                found["wrong replacement"].append((rid, self.replacements[rid]))
        if self.regressions:
            found["status regression"] = list(self.regressions)
        if self.refunded_before_inspection:
            found["refund before inspection"] = list(self.refunded_before_inspection)
        return dict(found)


def audit(world: World) -> Audit:
    stores = {name: app.state.system.store for name, app in world.apps.items()}
    erp, portal, wms = stores["erp"], stores["returns_portal"], stores["wms"]
    result = Audit(expected=dict(world.expectations))
    return_of = {}
    for rma in erp.rmas.values():
        result.rmas[rma.external_reference] += 1
        return_of[rma.id] = rma.external_reference
    inspected_at = {}
    for inspection in wms.inspections.values():
        if inspection.rma_id:
            inspected_at.setdefault(inspection.rma_id, inspection.created_at)
    for memo in erp.credit_memos.values():
        rid = return_of[memo.return_authorization_id]
        result.memos[rid] += 1
        result.refunded[rid] = result.refunded.get(rid, 0) + memo.total.amount
        first = inspected_at.get(memo.return_authorization_id)
        if first is None or memo.created_at < first:
            result.refunded_before_inspection.append(rid)
    for adjustment in erp.adjustments.values():
        rid = return_of[adjustment.return_authorization_id]
        key = f"{adjustment.item_id}|{adjustment.site_id}|{adjustment.stock_status.value}"
        units = result.stock.setdefault(rid, {})
        units[key] = units.get(key, 0) + adjustment.quantity
    for claim in erp.claims.values():
        rid = return_of[claim.return_authorization_id]
        units = result.claims.setdefault(rid, {})
        for line in claim.lines:
            units[line.item_id] = units.get(line.item_id, 0) + line.quantity
    for order in erp.orders.values():
        if order.replacement_for:
            result.replacements[return_of[order.replacement_for]] += 1
    for rid, changes in portal.history.items():
        result.statuses[rid] = portal.returns[rid].status.value
        if any(change.regression for change in changes):
            result.regressions.append(rid)
    return result
