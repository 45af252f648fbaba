"""The returns portal's state: return requests, their status history, and the events it announces."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from simulators.domain import (
    STATUS_RANK,
    Money,
    Resolution,
    ReturnReason,
    ReturnStatus,
)
from simulators.fakekit.announcer import FakeStore
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.problems import Problem, invalid, not_found
from simulators.seed import ReturnPolicy, SalesOrder

Ref = Annotated[str, Field(min_length=1, max_length=100)]

# Statuses whose units no longer count as "being returned": the customer may return them again.
_RELEASED = frozenset({ReturnStatus.CANCELLED, ReturnStatus.REJECTED})
# The customer may cancel only before the parcel is on its way.
_CANCELLABLE = frozenset({ReturnStatus.REQUESTED, ReturnStatus.APPROVED})

# Who a change came from: the shopper in the portal, or the integration layer over the API.
Source = Literal["customer", "integration"]


class _Request(BaseModel):
    # Unknown fields are refused rather than ignored: a misspelt field must not pass silently.
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------------


class ReturnLineRequest(_Request):
    line_number: int = Field(ge=1, le=1_000_000, description="Line number of the sales order, e.g. 10")
    quantity: StrictInt = Field(ge=1, le=1_000_000, description="Units to return, at least 1 (a JSON integer)")
    reason: ReturnReason


class ReturnRequest(_Request):
    """What a shopper submits in the portal."""

    order_id: Ref = Field(examples=["SO-000001"])
    customer_email: str = Field(min_length=1, max_length=254, description="Must be the order's customer's email (any case)")
    lines: list[ReturnLineRequest] = Field(min_length=1, max_length=100)
    resolution: Resolution


class ReturnLabel(_Request):
    carrier: str = Field(min_length=1, max_length=50, examples=["UPS"])
    tracking_code: str = Field(min_length=1, max_length=100)
    label_url: str = Field(min_length=1, max_length=2000)


class Refund(_Request):
    amount: Money = Field(description="Amount refunded, in the order's currency, >= 0")
    credit_memo_id: Ref = Field(examples=["CM-000001"])


class ReturnUpdate(_Request):
    """A move of the return by the integration layer, with what that status needs."""

    status: ReturnStatus
    rma_id: Ref | None = Field(None, description="Required (here or already on the return) for approved")
    label: ReturnLabel | None = Field(None, description="Required (here or already on the return) for approved")
    rejection_reason: str | None = Field(None, min_length=1, max_length=500, description="Required for rejected")
    refund: Refund | None = Field(None, description="Required for refunded")
    note: str | None = Field(None, min_length=1, max_length=2000)


# --- documents -----------------------------------------------------------------------------


class ReturnLine(BaseModel):
    line_number: int = Field(description="The sales order line returned (same number)")
    item_id: str
    quantity: int
    reason: ReturnReason
    unit_price: Money


class PortalReturn(BaseModel):
    id: str = Field(examples=["RET-000001"])
    order_id: str
    customer_id: str
    customer_email: str
    resolution: Resolution
    currency: str
    status: ReturnStatus
    lines: list[ReturnLine]
    rma_id: str | None = None
    label: ReturnLabel | None = None
    rejection_reason: str | None = None
    refund: Refund | None = None
    note: str | None = Field(None, description="The last note sent with a status update")
    requested_at: datetime
    updated_at: datetime
    created_by: str | None = Field(description="Principal that created the return")
    correlation_id: str | None = Field(description="X-Correlation-ID of the creating request")
    idempotency_key: str | None = Field(description="Idempotency-Key of the creating request")


class StatusChange(BaseModel):
    """One entry of a return's history: a status change, or an update that kept the status."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    return_id: str
    from_status: ReturnStatus | None = Field(alias="from", description="Null for the creation of the return")
    to_status: ReturnStatus = Field(alias="to")
    at: datetime
    caller: str | None = Field(description="Principal that made the change")
    source: Source
    correlation_id: str | None
    regression: bool = Field(description="True when the move goes back along the normal order of statuses")
    changes: list[str] = Field(description="Fields other than status that this change set or replaced")
    note: str | None = None


_CUSTOMER = CallContext(principal="customer", correlation_id=None, idempotency_key=None)


class ReturnsPortalStore(FakeStore):

    def reset(self) -> None:
        self._ids = self.ids("RET")
        self.returns: dict[str, PortalReturn] = {}
        self._by_order: dict[str, list[str]] = {}  # order id -> its return ids, oldest first
        self.history: dict[str, list[StatusChange]] = {}

    # --- reads -----------------------------------------------------------------------------

    def policy(self) -> ReturnPolicy:
        return self.master.policy

    def order(self, order_id: str) -> SalesOrder:
        try:
            return self.master.orders[order_id]
        except KeyError:
            raise not_found("order", order_id) from None

    def get(self, return_id: str) -> PortalReturn:
        try:
            return self.returns[return_id]
        except KeyError:
            raise not_found("return", return_id) from None

    def find(
        self,
        status: ReturnStatus | None = None,
        order_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[PortalReturn]:
        out = []
        for ret in self.returns.values():  # insertion order = id order
            if after is not None and ret.id <= after:
                continue
            if (status is None or ret.status == status) and (order_id is None or ret.order_id == order_id):
                out.append(ret)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def status_history(self, return_id: str) -> list[StatusChange]:
        self.get(return_id)
        return list(self.history[return_id])

    def returned_quantity(self, order_id: str, line_number: int, *, exclude: str | None = None) -> int:
        """Units of an order line in returns that still count (not cancelled, not rejected)."""
        return sum(
            line.quantity
            for ret in (self.returns[rid] for rid in self._by_order.get(order_id, ()))
            if ret.status not in _RELEASED and ret.id != exclude
            for line in ret.lines
            if line.line_number == line_number
        )

    # --- customer side ---------------------------------------------------------------------

    def create_return(self, req: ReturnRequest, ctx: CallContext | None = None) -> PortalReturn:
        ctx = ctx or _CUSTOMER
        order = self.master.orders.get(req.order_id)
        if order is None:
            raise invalid("order_id", f"no order {req.order_id!r}")
        customer = self.master.customers[order.customer_id]
        if req.customer_email.strip().casefold() != customer.email.casefold():
            raise invalid("customer_email", f"does not match the email of the customer of order {order.id}")
        now = self.clock.now()
        if order.delivered_at is None or order.delivered_at > now:
            raise invalid("order_id", f"order {order.id} is not delivered yet; only delivered orders can be returned")
        # The portal does NOT enforce the return window or the customer's account status (on
        # hold): deciding eligibility is the integration layer's job, as with a real portal
        # wired to an ERP. It only stops a shopper returning more units than were delivered.
        by_number = {line.line_number: line for line in order.lines}
        seen: set[int] = set()
        lines: list[ReturnLine] = []
        for i, req_line in enumerate(req.lines):
            order_line = by_number.get(req_line.line_number)
            if order_line is None:
                raise invalid(f"lines[{i}].line_number", f"order {order.id} has no line {req_line.line_number}; it has {sorted(by_number)}")
            if req_line.line_number in seen:
                raise invalid(f"lines[{i}].line_number", f"line {req_line.line_number} appears twice; put all its units on one line")
            seen.add(req_line.line_number)
            left = order_line.quantity - self.returned_quantity(order.id, order_line.line_number)
            if req_line.quantity > left:
                raise invalid(
                    f"lines[{i}].quantity",
                    f"at most {max(left, 0)} unit(s) of line {order_line.line_number} can still be returned "
                    f"({order_line.quantity} ordered, {order_line.quantity - left} already in other returns)",
                )
            lines.append(
                ReturnLine(
                    line_number=order_line.line_number,
                    item_id=order_line.item_id,
                    quantity=req_line.quantity,
                    reason=req_line.reason,
                    unit_price=order_line.unit_price,
                )
            )
        ret = PortalReturn(
            id=self._ids.next(),
            order_id=order.id,
            customer_id=customer.id,
            customer_email=customer.email,
            resolution=req.resolution,
            currency=order.currency,
            status=ReturnStatus.REQUESTED,
            lines=lines,
            requested_at=now,
            updated_at=now,
            created_by=ctx.principal,
            correlation_id=ctx.correlation_id,
            idempotency_key=ctx.idempotency_key,
        )
        self.returns[ret.id] = ret
        self._by_order.setdefault(ret.order_id, []).append(ret.id)
        self.history[ret.id] = [self._change(ret.id, None, ret.status, now, ctx, "customer", [], None)]
        self.announce("return.created", ret)
        return ret

    def cancel(self, return_id: str, ctx: CallContext | None = None) -> PortalReturn:
        """The shopper cancels: only before the parcel is on its way."""
        ctx = ctx or _CUSTOMER
        ret = self.get(return_id)
        if ret.status not in _CANCELLABLE:
            raise Problem(
                409,
                "not-cancellable",
                f"Return {ret.id} is {ret.status.value}; a customer can cancel only a requested or approved return.",
                title="Return cannot be cancelled",
            )
        return self._move(ret, ReturnStatus.CANCELLED, {}, None, ctx, "customer")

    # --- integration side ------------------------------------------------------------------

    def update(self, return_id: str, upd: ReturnUpdate, ctx: CallContext) -> PortalReturn:
        """Move a return. Like many SaaS APIs the portal accepts ANY move between known
        statuses, regressions included (received -> in_transit), and records it in the
        history: it does not protect its own state machine, so the oracle can see a
        regression the integration layer caused. Only the data a status needs is checked."""
        ret = self.get(return_id)
        fields: dict[str, Any] = {}
        for name in ("rma_id", "label", "rejection_reason", "refund", "note"):
            value = getattr(upd, name)
            if value is not None and value != getattr(ret, name):
                fields[name] = value
        if upd.status == ret.status and not fields:
            return ret  # nothing new: a no-op, no history entry
        after = {name: fields.get(name, getattr(ret, name)) for name in ("rma_id", "label", "rejection_reason", "refund")}
        if upd.status == ReturnStatus.APPROVED:
            for name in ("rma_id", "label"):
                if after[name] is None:
                    raise invalid(name, "required to approve a return (send it with the update)")
        elif upd.status == ReturnStatus.REJECTED and after["rejection_reason"] is None:
            raise invalid("rejection_reason", "required to reject a return")
        elif upd.status == ReturnStatus.REFUNDED and after["refund"] is None:
            raise invalid("refund", "required to mark a return refunded: {amount, credit_memo_id}")
        if "refund" in fields:
            amount = upd.refund.amount
            if amount.currency != ret.currency:
                raise invalid("refund.amount.currency", f"must be the order's currency {ret.currency}, got {amount.currency}")
            if amount.amount < 0:
                raise invalid("refund.amount.amount", "must be >= 0 (integer cents)")
        return self._move(ret, upd.status, fields, upd.note, ctx, "integration")

    # --- internals -------------------------------------------------------------------------

    def _move(self, ret: PortalReturn, to: ReturnStatus, fields: dict[str, Any], note: str | None, ctx: CallContext, source: Source) -> PortalReturn:
        now = self.clock.now()
        before = ret.status
        moved = ret.model_copy(update={**fields, "status": to, "updated_at": now})
        self.returns[ret.id] = moved
        self.history[ret.id].append(self._change(ret.id, before, to, now, ctx, source, sorted(fields), note))
        if to == ReturnStatus.CANCELLED and before != ReturnStatus.CANCELLED:
            # The full return, plus the fields of simulators.events.ReturnCancelled and who cancelled.
            self.announce("return.cancelled", moved, return_id=moved.id, cancelled_at=now.isoformat().replace("+00:00", "Z"), cancelled_by=source)
        return moved

    @staticmethod
    def _change(return_id, before, to, at, ctx: CallContext, source: Source, changes, note) -> StatusChange:
        return StatusChange(
            return_id=return_id,
            from_status=before,
            to_status=to,
            at=at,
            caller=ctx.principal,
            source=source,
            correlation_id=ctx.correlation_id,
            regression=before is not None and STATUS_RANK[to] < STATUS_RANK[before],
            changes=[c for c in changes if c != "note"],
            note=note,
        )

    def forget(self, return_id: str) -> None:
        """Drop a finished return and its history (virtual mode, once the model traced it)."""
        ret = self.returns.pop(return_id, None)
        self.history.pop(return_id, None)
        if ret is not None:
            ids = self._by_order.get(ret.order_id, [])
            if return_id in ids:
                ids.remove(return_id)
            if not ids:
                self._by_order.pop(ret.order_id, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "returns": [r.model_dump(mode="json") for r in self.returns.values()],
            "history": [c.model_dump(mode="json") for changes in self.history.values() for c in changes],
        }
