"""The ground truth: what should happen to every return, as the model knows it.

The model records, per return, whether it is eligible, what was received and inspected, and
from that the refund under the portal's policy and the stock each disposition should move.
The oracle will compare this with what the integration layer actually did in the fakes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from simulators.domain import (
    DISPOSITION_STOCK,
    Condition,
    Disposition,
    Resolution,
    ReturnReason,
)
from simulators.seed import ReturnPolicy


def _half_up(numerator: int, denominator: int) -> int:
    return (numerator + denominator // 2) // denominator


def refund_cents(policy: ReturnPolicy, unit_price: int, quantity: int, condition: Condition, reason: ReturnReason) -> int:
    """The policy's refund for units of one line in one condition, in integer cents.

    Value = unit price x quantity x the condition's refund percent; minus the restocking fee
    (basis points of the line value) when the condition carries one and the reason is the
    customer's; each step rounded half up; never below zero.
    """
    line_value = unit_price * quantity
    value = _half_up(line_value * policy.refund_percent_by_condition.get(condition, 0), 100)
    fee = 0
    if condition in policy.restocking_fee_conditions and reason not in policy.fee_exempt_reasons:
        fee = _half_up(line_value * policy.restocking_fee_bps, 10_000)
    return max(0, value - fee)


@dataclass
class InspectedUnits:
    item_id: str
    quantity: int
    condition: Condition
    disposition: Disposition


@dataclass
class Expectation:
    return_id: str
    order_id: str
    customer_id: str
    resolution: Resolution
    requested_at: float
    eligible: bool
    ineligible_reason: str | None
    site_id: str | None = None
    outcome: str = "requested"  # where the return ended, in the model's terms
    received: dict[str, int] = field(default_factory=dict)
    inspected: list[InspectedUnits] = field(default_factory=list)
    refund_cents: int | None = None
    stock: dict[str, int] = field(default_factory=dict)  # "item|site|status" -> units
    supplier_claims: dict[str, int] = field(default_factory=dict)  # item -> units to its vendor
    replacement: bool = False

    def settle_inspection(self, policy: ReturnPolicy, prices: dict[str, int], reasons: dict[str, ReturnReason]) -> None:
        """Once inspected: the refund, stock movements and supplier claims that should follow."""
        stock: Counter[str] = Counter()
        claims: Counter[str] = Counter()
        refund = 0
        for units in self.inspected:
            refund += refund_cents(policy, prices[units.item_id], units.quantity, units.condition, reasons[units.item_id])
            status = DISPOSITION_STOCK[units.disposition]
            if status is None:
                claims[units.item_id] += units.quantity
            else:
                stock[f"{units.item_id}|{self.site_id}|{status.value}"] += units.quantity
        self.stock, self.supplier_claims = dict(stock), dict(claims)
        self.replacement = self.resolution is Resolution.EXCHANGE
        self.refund_cents = 0 if self.replacement else refund

    def as_record(self) -> dict[str, Any]:
        return asdict(self)
