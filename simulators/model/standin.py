"""Virtual mode's stand-in for an integration layer: reacts to each fact at once, in process.

It exists so that volumes, traces and expectations can be produced and studied with no
integration layer and no HTTP. It is not the reference integration layer (that one lives in
another package, talks HTTP and owes nothing to this code) and it is never what the oracle
judges: it simply plays a correct integration layer's part, instantly.

It remembers which documents it made for each return, so that a lean virtual run can have the
fakes forget them once the return has ended and been traced (:meth:`InlineIntegration.forget`).
"""

from __future__ import annotations

from collections import Counter

from simulators.carrier.store import LabelRequest, Parcel
from simulators.domain import (
    DISPOSITION_STOCK,
    Condition,
    Disposition,
    Money,
    Resolution,
    ReturnReason,
    ReturnStatus,
)
from simulators.erp.models import (
    AdjustmentRequest,
    ClaimLineRequest,
    CreditLineRequest,
    CreditMemoRequest,
    ReplacementLine,
    ReplacementOrderRequest,
    RmaLineRequest,
    RmaRequest,
    SupplierClaimRequest,
)
from simulators.fakekit.pipeline import CallContext
from simulators.model.expected import refund_cents
from simulators.returns_portal.store import Refund, ReturnLabel, ReturnUpdate
from simulators.wms.store import ExpectedReceiptRequest, ItemQuantity


class InlineIntegration:
    def __init__(self, stores: dict, clock) -> None:
        self.erp, self.portal = stores["erp"], stores["returns_portal"]
        self.carrier, self.wms = stores["carrier"], stores["wms"]
        self.master = self.portal.master
        self.clock = clock
        self.rma_of: dict[str, str] = {}  # return id -> RMA id
        self.return_of: dict[str, str] = {}  # RMA id -> return id
        self.made: dict[str, dict[str, list[str]]] = {}  # return id -> ERP collection -> document ids
        handlers = {
            "return.created": self._created,
            "tracking.updated": self._tracking,
            "receipt.completed": self._received,
            "inspection.completed": self._inspected,
        }
        for store in (self.portal, self.carrier, self.wms):
            store.listeners.append(lambda kind, data: handlers.get(kind, lambda d: None)(data))

    def _ctx(self, return_id: str) -> CallContext:
        return CallContext(principal="inline-integration", correlation_id=return_id, idempotency_key=None)

    def _update(self, return_id: str, **fields) -> None:
        self.portal.update(return_id, ReturnUpdate(**fields), self._ctx(return_id))

    def _made(self, return_id: str, collection: str, doc_id: str) -> None:
        self.made.setdefault(return_id, {}).setdefault(collection, []).append(doc_id)

    def forget(self, return_id: str) -> None:
        """Have the ERP forget what this stand-in made for a return that has ended."""
        rma_id = self.rma_of.pop(return_id, None)
        if rma_id is not None:
            self.return_of.pop(rma_id, None)
        made = self.made.pop(return_id, None)
        if made:
            self.erp.forget(**made)

    def _created(self, ret: dict) -> None:
        rid = ret["id"]
        order = self.master.orders[ret["order_id"]]
        customer = self.master.customers[ret["customer_id"]]
        age_days = (self.clock.now() - order.delivered_at).total_seconds() / 86_400
        if customer.account_status.value == "on_hold":
            return self._update(rid, status=ReturnStatus.REJECTED, rejection_reason="customer account on hold")
        if age_days > self.master.policy.window_days:
            return self._update(rid, status=ReturnStatus.REJECTED, rejection_reason="outside the return window")
        ctx = self._ctx(rid)
        rma = self.erp.create_rma(RmaRequest(
            sales_order_id=order.id, external_reference=rid,
            lines=[RmaLineRequest(line_number=l["line_number"], quantity=l["quantity"], reason=ReturnReason(l["reason"]))
                   for l in ret["lines"]],
        ), ctx)
        self._made(rid, "rmas", rma.id)
        weight = sum(self.master.items[l["item_id"]].weight_g * l["quantity"] for l in ret["lines"])
        label = self.carrier.create_label(LabelRequest(
            rma_id=rma.id, from_address=customer.address, to_site_id=rma.site_id,
            parcel=Parcel(weight_g=min(weight, 70_000)),
        ), ctx)
        self.wms.create_expected_receipt(ExpectedReceiptRequest(
            rma_id=rma.id, site_id=rma.site_id, tracking_code=label.tracking_code,
            lines=[ItemQuantity(item_id=l.item_id, quantity=l.quantity) for l in rma.lines],
        ), ctx)
        self.rma_of[rid], self.return_of[rma.id] = rma.id, rid
        self._update(rid, status=ReturnStatus.APPROVED, rma_id=rma.id,
                     label=ReturnLabel(carrier=label.carrier, tracking_code=label.tracking_code, label_url=label.label_url))

    def _tracking(self, scan: dict) -> None:
        rid = self.return_of.get(scan["rma_id"])
        if rid and scan["status"] == "in_transit" and self.portal.returns[rid].status is ReturnStatus.APPROVED:
            self._update(rid, status=ReturnStatus.IN_TRANSIT)

    def _received(self, receipt: dict) -> None:
        rid = self.return_of.get(receipt["rma_id"] or "")
        if rid:
            self._update(rid, status=ReturnStatus.RECEIVED)

    def _inspected(self, inspection: dict) -> None:
        rid = self.return_of.get(inspection["rma_id"] or "")
        if rid is None:
            return
        ctx = self._ctx(rid)
        rma = self.erp.rmas[self.rma_of[rid]]
        by_item = {l.item_id: l for l in rma.lines}
        ret = self.portal.returns[rid]
        refund = 0
        credited: Counter[int] = Counter()
        amounts: Counter[int] = Counter()
        claims: Counter[str] = Counter()
        for line in inspection["lines"]:
            item, quantity = line["item_id"], line["quantity"]
            disposition = Disposition(line["disposition"])
            status = DISPOSITION_STOCK[disposition]
            if status is None:
                claims[item] += quantity
            else:
                adjustment = self.erp.adjust(AdjustmentRequest(
                    item_id=item, site_id=rma.site_id, stock_status=status, quantity=quantity,
                    reason=f"return {rma.id} {disposition.value}", return_authorization_id=rma.id), ctx)
                self._made(rid, "adjustments", adjustment.id)
            rma_line = by_item[item]
            cents = refund_cents(self.master.policy, rma_line.unit_price.amount, quantity, Condition(line["condition"]), ReturnReason(rma_line.reason))
            credited[rma_line.line_number] += quantity
            amounts[rma_line.line_number] += cents
            refund += cents
        for item, quantity in sorted(claims.items()):
            claim = self.erp.create_claim(SupplierClaimRequest(
                vendor_id=self.master.items[item].vendor_id, return_authorization_id=rma.id,
                lines=[ClaimLineRequest(item_id=item, quantity=quantity)], reason="return to vendor",
            ), ctx)
            self._made(rid, "claims", claim.id)
        if ret.resolution is Resolution.EXCHANGE:
            # An exchange ships a replacement instead of refunding: no credit memo.
            order = self.erp.create_replacement_order(ReplacementOrderRequest(
                customer_id=rma.customer_id, site_id=rma.site_id, replacement_for=rma.id,
                lines=[ReplacementLine(item_id=i, quantity=q) for i, q in sorted(_units(inspection).items())],
            ), ctx)
            self._made(rid, "orders", order.id)
        else:
            memo = self.erp.create_credit_memo(CreditMemoRequest(
                return_authorization_id=rma.id,
                lines=[CreditLineRequest(line_number=n, quantity=q, amount=Money(amount=amounts[n], currency=rma.currency))
                       for n, q in sorted(credited.items())],
            ), ctx)
            self._made(rid, "credit_memos", memo.id)
            self._update(rid, status=ReturnStatus.REFUNDED,
                         refund=Refund(amount=Money(amount=refund, currency=rma.currency), credit_memo_id=memo.id))
        self._update(rid, status=ReturnStatus.CLOSED)


def _units(inspection: dict) -> Counter:
    units: Counter[str] = Counter()
    for line in inspection["lines"]:
        units[line["item_id"]] += line["quantity"]
    return units

