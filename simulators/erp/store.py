"""The ERP's state: seeded master data plus every document the integration layer posted.

Like a real ERP (NetSuite, S/4HANA, D365) it does **not** deduplicate business documents:
each accepted POST creates a new RMA, credit memo, adjustment, claim or order, and there is
no check of cumulative quantities across documents. An integration layer that posts the same
return twice must leave two documents behind, or the oracle could not see the defect. Retries
are made safe by the ``Idempotency-Key`` header, which the shared pipeline handles before any
of this code runs.

Every check runs before anything is written, so a refused request changes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from itertools import islice
from typing import Any, TypeVar

from simulators.domain import Money, StockStatus
from simulators.erp.models import (
    AdjustmentRequest,
    CreditLine,
    CreditMemo,
    CreditMemoRequest,
    ErpSalesOrder,
    InventoryAdjustment,
    InventoryBalance,
    ReplacementOrderRequest,
    ReturnAuthorization,
    RmaLine,
    RmaRequest,
    SupplierClaim,
    SupplierClaimRequest,
)
from simulators.fakekit.announcer import FakeStore
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.problems import invalid, not_found
from simulators.seed import (
    Customer,
    Item,
    OrderLine,
    SalesOrder,
    Site,
    Vendor,
)

T = TypeVar("T")
MAX_INITIAL_AVAILABLE = 200


def page(rows: Iterable[T], limit: int, offset: int = 0) -> list[T]:
    return list(islice(rows, offset, offset + limit))


def _unique_lines(numbers: list[Any], field: str) -> None:
    seen: set[Any] = set()
    for i, n in enumerate(numbers):
        if n in seen:
            raise invalid(f"lines[{i}].{field}", f"{n!r} appears twice; give each line once")
        seen.add(n)


class ErpStore(FakeStore):

    def reset(self) -> None:
        # Orders made through the API (replacements) have a number range of their own, as ERPs give
        # each order type: the model adds new sales to the master data's range during a season.
        self._next_order = 1
        self._rma_ids = self.ids("RMA")
        self._cm_ids = self.ids("CM")
        self._adj_ids = self.ids("ADJ")
        self._sc_ids = self.ids("SC")
        self.orders: dict[str, ErpSalesOrder] = {}  # created through the API; seeded ones stay in master
        self.rmas: dict[str, ReturnAuthorization] = {}
        self.credit_memos: dict[str, CreditMemo] = {}
        self.adjustments: dict[str, InventoryAdjustment] = {}
        self.claims: dict[str, SupplierClaim] = {}
        rng = random.Random(f"erp:{self.master.config.seed}")
        self.balances: dict[tuple[str, str, StockStatus], int] = {}
        for item_id in self.master.items:
            for site_id in self.master.sites:
                for status in StockStatus:
                    self.balances[(item_id, site_id, status)] = (
                        rng.randint(0, MAX_INITIAL_AVAILABLE) if status is StockStatus.AVAILABLE else 0
                    )

    # --- master data -------------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer:
        try:
            return self.master.customers[customer_id]
        except KeyError:
            raise not_found("customer", customer_id) from None

    def item(self, item_id: str) -> Item:
        try:
            return self.master.items[item_id]
        except KeyError:
            raise not_found("item", item_id) from None

    def vendor(self, vendor_id: str) -> Vendor:
        try:
            return self.master.vendors[vendor_id]
        except KeyError:
            raise not_found("vendor", vendor_id) from None

    def sites(self) -> list[Site]:
        return list(self.master.sites.values())

    def _site(self, site_id: str, field: str) -> None:
        if site_id not in self.master.sites:
            raise invalid(field, f"unknown site {site_id!r}; expected one of {sorted(self.master.sites)}")

    # --- sales orders ------------------------------------------------------------------

    def sales_order(self, order_id: str) -> SalesOrder:
        order = self.master.orders.get(order_id) or self.orders.get(order_id)
        if order is None:
            raise not_found("sales order", order_id)
        return order

    def find_orders(self, customer_id: str | None, replacement_for: str | None) -> Iterable[SalesOrder]:
        for order in [*self.master.orders.values(), *self.orders.values()]:
            if customer_id is not None and order.customer_id != customer_id:
                continue
            if replacement_for is not None and order.replacement_for != replacement_for:
                continue
            yield order

    def create_replacement_order(self, req: ReplacementOrderRequest, ctx: CallContext) -> ErpSalesOrder:
        if req.customer_id not in self.master.customers:
            raise invalid("customer_id", f"unknown customer {req.customer_id!r}")
        self._site(req.site_id, "site_id")
        rma = self.rmas.get(req.replacement_for)
        if rma is None:
            raise invalid("replacement_for", f"no return authorization {req.replacement_for!r}")
        for i, line in enumerate(req.lines):
            if line.item_id not in self.master.items:
                raise invalid(f"lines[{i}].item_id", f"unknown item {line.item_id!r}")
        order_id = f"SO-R{self.run_id + '-' if self.run_id else ''}{self._next_order:06d}"
        self._next_order += 1
        now = self.clock.now()
        order = ErpSalesOrder(
            id=order_id,
            customer_id=req.customer_id,
            site_id=req.site_id,
            currency=rma.currency,
            ordered_at=now,
            delivered_at=None,
            # An exchange ships free: the customer already paid for the returned unit.
            lines=[
                OrderLine(line_number=10 * (i + 1), item_id=l.item_id, quantity=l.quantity, unit_price=Money(amount=0, currency=rma.currency))
                for i, l in enumerate(req.lines)
            ],
            order_type="replacement",
            replacement_for=req.replacement_for,
            **ctx.stamp(self.clock),
        )
        self.orders[order_id] = order
        return order

    # --- return authorizations ---------------------------------------------------------

    def create_rma(self, req: RmaRequest, ctx: CallContext) -> ReturnAuthorization:
        order = self.master.orders.get(req.sales_order_id) or self.orders.get(req.sales_order_id)
        if order is None:
            raise invalid("sales_order_id", f"no sales order {req.sales_order_id!r}")
        site_id = req.site_id or order.site_id
        self._site(site_id, "site_id")
        _unique_lines([l.line_number for l in req.lines], "line_number")
        by_number = {l.line_number: l for l in order.lines}
        lines = []
        for i, l in enumerate(req.lines):
            ordered = by_number.get(l.line_number)
            if ordered is None:
                raise invalid(f"lines[{i}].line_number", f"{order.id} has no line {l.line_number}; its lines are {sorted(by_number)}")
            # Per document only: a second RMA for the same units is accepted (see module doc).
            if l.quantity > ordered.quantity:
                raise invalid(f"lines[{i}].quantity", f"at most {ordered.quantity} (ordered on line {l.line_number}), got {l.quantity}")
            lines.append(RmaLine(line_number=l.line_number, item_id=ordered.item_id, quantity=l.quantity, reason=l.reason, unit_price=ordered.unit_price))
        rma = ReturnAuthorization(
            id=self._rma_ids.next(),
            sales_order_id=order.id,
            customer_id=order.customer_id,
            site_id=site_id,
            external_reference=req.external_reference,
            currency=order.currency,
            lines=lines,
            **ctx.stamp(self.clock),
        )
        self.rmas[rma.id] = rma
        return rma

    def rma(self, rma_id: str) -> ReturnAuthorization:
        try:
            return self.rmas[rma_id]
        except KeyError:
            raise not_found("return authorization", rma_id) from None

    def find_rmas(self, sales_order_id: str | None, external_reference: str | None) -> Iterable[ReturnAuthorization]:
        return (
            r for r in self.rmas.values()
            if (sales_order_id is None or r.sales_order_id == sales_order_id)
            and (external_reference is None or r.external_reference == external_reference)
        )

    def _existing_rma(self, rma_id: str) -> ReturnAuthorization:
        rma = self.rmas.get(rma_id)
        if rma is None:
            raise invalid("return_authorization_id", f"no return authorization {rma_id!r}")
        return rma

    @staticmethod
    def _check_amount(money: Money, currency: str, field: str) -> None:
        if money.currency != currency:
            raise invalid(f"{field}.currency", f"must be {currency}, the currency of the order, got {money.currency}")
        if money.amount < 0:
            raise invalid(f"{field}.amount", f"must be >= 0 cents, got {money.amount}")

    # --- credit memos ------------------------------------------------------------------

    def create_credit_memo(self, req: CreditMemoRequest, ctx: CallContext) -> CreditMemo:
        rma = self._existing_rma(req.return_authorization_id)
        _unique_lines([l.line_number for l in req.lines], "line_number")
        by_number = {l.line_number: l for l in rma.lines}
        lines = []
        for i, l in enumerate(req.lines):
            returned = by_number.get(l.line_number)
            if returned is None:
                raise invalid(f"lines[{i}].line_number", f"{rma.id} has no line {l.line_number}; its lines are {sorted(by_number)}")
            if l.quantity > returned.quantity:
                raise invalid(f"lines[{i}].quantity", f"at most {returned.quantity} (authorized on {rma.id} line {l.line_number}), got {l.quantity}")
            # No upper bound on the amount: an over-refund is the integration layer's defect,
            # and the oracle must be able to see it.
            self._check_amount(l.amount, rma.currency, f"lines[{i}].amount")
            lines.append(CreditLine(line_number=l.line_number, item_id=returned.item_id, quantity=l.quantity, amount=l.amount))
        memo = CreditMemo(
            id=self._cm_ids.next(),
            return_authorization_id=rma.id,
            sales_order_id=rma.sales_order_id,
            customer_id=rma.customer_id,
            lines=lines,
            total=Money(amount=sum(l.amount.amount for l in lines), currency=rma.currency),
            memo=req.memo,
            **ctx.stamp(self.clock),
        )
        self.credit_memos[memo.id] = memo
        return memo

    def credit_memo(self, memo_id: str) -> CreditMemo:
        try:
            return self.credit_memos[memo_id]
        except KeyError:
            raise not_found("credit memo", memo_id) from None

    def find_credit_memos(self, rma_id: str | None, customer_id: str | None) -> Iterable[CreditMemo]:
        return (
            m for m in self.credit_memos.values()
            if (rma_id is None or m.return_authorization_id == rma_id)
            and (customer_id is None or m.customer_id == customer_id)
        )

    # --- inventory ---------------------------------------------------------------------

    def find_balances(self, item_id: str | None, site_id: str | None, stock_status: StockStatus | None) -> Iterable[InventoryBalance]:
        for (item, site, status), quantity in self.balances.items():
            if (item_id is None or item == item_id) and (site_id is None or site == site_id) and (stock_status is None or status is stock_status):
                yield InventoryBalance(item_id=item, site_id=site, stock_status=status, quantity=quantity)

    def adjust(self, req: AdjustmentRequest, ctx: CallContext) -> InventoryAdjustment:
        if req.item_id not in self.master.items:
            raise invalid("item_id", f"unknown item {req.item_id!r}")
        self._site(req.site_id, "site_id")
        if req.quantity == 0:
            raise invalid("quantity", "must be non-zero: positive into stock, negative out of it")
        if req.return_authorization_id is not None:
            self._existing_rma(req.return_authorization_id)
        key = (req.item_id, req.site_id, req.stock_status)
        after = self.balances[key] + req.quantity
        if after < 0:
            raise invalid("quantity", f"only {self.balances[key]} {req.stock_status.value} units of {req.item_id} at {req.site_id}; cannot remove {-req.quantity}")
        adjustment = InventoryAdjustment(
            id=self._adj_ids.next(),
            item_id=req.item_id,
            site_id=req.site_id,
            stock_status=req.stock_status,
            quantity=req.quantity,
            reason=req.reason,
            return_authorization_id=req.return_authorization_id,
            balance_after=after,
            **ctx.stamp(self.clock),
        )
        self.balances[key] = after
        self.adjustments[adjustment.id] = adjustment
        return adjustment

    def find_adjustments(self, rma_id: str | None, item_id: str | None, site_id: str | None) -> Iterable[InventoryAdjustment]:
        return (
            a for a in self.adjustments.values()
            if (rma_id is None or a.return_authorization_id == rma_id)
            and (item_id is None or a.item_id == item_id)
            and (site_id is None or a.site_id == site_id)
        )

    # --- supplier claims ---------------------------------------------------------------

    def create_claim(self, req: SupplierClaimRequest, ctx: CallContext) -> SupplierClaim:
        if req.vendor_id not in self.master.vendors:
            raise invalid("vendor_id", f"unknown vendor {req.vendor_id!r}")
        rma = self._existing_rma(req.return_authorization_id)
        for i, l in enumerate(req.lines):
            item = self.master.items.get(l.item_id)
            if item is None:
                raise invalid(f"lines[{i}].item_id", f"unknown item {l.item_id!r}")
            if item.vendor_id != req.vendor_id:
                raise invalid(f"lines[{i}].item_id", f"{item.id} is supplied by {item.vendor_id}, not {req.vendor_id}")
            if l.amount is not None:
                self._check_amount(l.amount, rma.currency, f"lines[{i}].amount")
        amounts = [l.amount.amount for l in req.lines if l.amount is not None]
        claim = SupplierClaim(
            id=self._sc_ids.next(),
            vendor_id=req.vendor_id,
            return_authorization_id=rma.id,
            lines=req.lines,
            total=Money(amount=sum(amounts), currency=rma.currency) if amounts else None,
            reason=req.reason,
            **ctx.stamp(self.clock),
        )
        self.claims[claim.id] = claim
        return claim

    def claim(self, claim_id: str) -> SupplierClaim:
        try:
            return self.claims[claim_id]
        except KeyError:
            raise not_found("supplier claim", claim_id) from None

    def find_claims(self, rma_id: str | None) -> Iterable[SupplierClaim]:
        return (c for c in self.claims.values() if rma_id is None or c.return_authorization_id == rma_id)

    # --- whole state -------------------------------------------------------------------

    def forget(self, *, rmas: list[str] = (), credit_memos: list[str] = (), adjustments: list[str] = (),
               claims: list[str] = (), orders: list[str] = ()) -> None:
        """Drop a finished return's documents (virtual mode, once the model traced them);
        inventory balances keep every movement."""
        for collection, ids in ((self.rmas, rmas), (self.credit_memos, credit_memos), (self.adjustments, adjustments),
                                (self.claims, claims), (self.orders, orders)):
            for doc_id in ids:
                collection.pop(doc_id, None)

    def snapshot(self) -> dict[str, Any]:
        def dump(docs) -> list[dict[str, Any]]:
            return [d.model_dump(mode="json") for d in docs]

        return {
            "sales_orders": dump(self.orders.values()),  # seeded orders are master data, not state
            "return_authorizations": dump(self.rmas.values()),
            "credit_memos": dump(self.credit_memos.values()),
            "inventory": [
                {"item_id": i, "site_id": s, "stock_status": st.value, "quantity": q}
                for (i, s, st), q in self.balances.items()
            ],
            "inventory_adjustments": dump(self.adjustments.values()),
            "supplier_claims": dump(self.claims.values()),
        }
