"""What the load does to each return, and what should follow from it.

A *journey* is one return as the load drove it: requested in the portal (order, lines,
resolution), scanned by the carrier, received and inspected by the warehouse. Each load process
records its journeys in a :class:`Ledger`; the master merges them and, after the run, turns them
into the oracle's expectations with the model's own rules (:mod:`simulators.model.expected`).

Orders are partitioned by worker (order k goes to worker k mod n), and each order is returned
once, so two workers never return the same order line and the portal never refuses a request
for want of units. Every random draw comes from ``random.Random(seed:run:worker)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from simulators.domain import Condition, Disposition, Resolution, ReturnReason
from simulators.model.draws import pick, table
from simulators.model.expected import Expectation, InspectedUnits
from simulators.model.grading import Grader
from simulators.model.lifecycle import REASONS
from simulators.scenario import Scenario
from simulators.seed import MasterData, SalesOrder

DAY_S = 86_400.0
WINDOW_MARGIN_DAYS = 1.0  # orders this close to the window's edge are left out: no coin flips

# Stages in the order the load reaches them, and the portal status each one owes.
STAGES = ("requested", "scanned", "received", "inspected")
OWED = {"requested": "approved", "scanned": "in_transit", "received": "received", "inspected": "closed"}
WAITING = {"requested": "approval", "scanned": "transit", "received": "receipt", "inspected": "refund"}
RANK = {"requested": 0, "approved": 1, "rejected": 1, "cancelled": 1, "in_transit": 2, "received": 3, "refunded": 4, "closed": 5}


@dataclass
class Journey:
    return_id: str
    order_id: str
    customer_id: str
    resolution: str
    requested_at: str  # the portal's business time
    eligible: bool
    ineligible_reason: str | None
    reasons: dict[str, str]  # item -> reason
    prices: dict[str, int]  # item -> unit price, cents
    stage: str = "requested"
    site_id: str | None = None
    received: dict[str, int] = field(default_factory=dict)
    inspected: list[list] = field(default_factory=list)  # [item, quantity, condition, disposition]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """The journeys of one process; :meth:`drain` hands the changed ones to the master."""

    def __init__(self) -> None:
        self.journeys: dict[str, Journey] = {}
        self._changed: set[str] = set()

    def put(self, journey: Journey) -> None:
        self.journeys[journey.return_id] = journey
        self._changed.add(journey.return_id)

    def drain(self) -> list[dict[str, Any]]:
        out = [self.journeys[rid].as_dict() for rid in sorted(self._changed)]
        self._changed.clear()
        return out


def partition(master: MasterData, index: int, count: int) -> list[SalesOrder]:
    """This worker's share of the delivered orders, oldest id first."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"worker index {index} is outside the {count} partition(s) the run started with")
    orders = sorted(master.orders.values(), key=lambda o: o.id)
    return [o for k, o in enumerate(orders) if k % count == index and o.delivered_at is not None]


class Requests:
    """Return requests of one worker: which order, which lines, why, and what the customer wants."""

    def __init__(self, master: MasterData, scenario: Scenario, orders: list[SalesOrder], rng: random.Random) -> None:
        self.master, self.scenario, self.rng = master, scenario, rng
        window = master.policy.window_days
        epoch = master.config.epoch
        age = {o.id: (epoch - o.delivered_at).total_seconds() / DAY_S for o in orders}
        self.in_window = [o for o in orders if age[o.id] < window - WINDOW_MARGIN_DAYS]
        self.late = [o for o in orders if age[o.id] > window + WINDOW_MARGIN_DAYS]
        rng.shuffle(self.in_window)
        rng.shuffle(self.late)
        # Tables of plain strings (an enum's .value costs more than the draw), reasons per item.
        self._reasons = {category: _values(table(shares)) for category, shares in REASONS.items()}
        self._item_reasons: dict[str, tuple[list, list]] = {}
        self._resolutions = _values(table(scenario.customer.resolution_mix))

    def left(self) -> int:
        return len(self.in_window) + len(self.late)

    def next(self) -> dict[str, Any] | None:
        """The body of ``POST /returns`` for the next order; None when this worker ran out."""
        late = self.late and (not self.in_window or self.rng.random() < self.scenario.customer.late_request_rate)
        pool = self.late if late else self.in_window
        if not pool:
            return None
        order = pool.pop()
        rng = self.rng
        chosen = [l for l in order.lines if rng.random() < 0.6] or [rng.choice(order.lines)]
        lines = []
        for line in chosen:
            units = line.quantity if rng.random() < 0.8 else rng.randint(1, line.quantity)
            reasons = self._item_reasons.get(line.item_id)
            if reasons is None:
                reasons = self._item_reasons[line.item_id] = self._reasons[self.master.items[line.item_id].category]
            lines.append({"line_number": line.line_number, "quantity": units, "reason": pick(rng, reasons)})
        customer = self.master.customers[order.customer_id]
        return {"order_id": order.id, "customer_email": customer.email, "lines": lines,
                "resolution": pick(rng, self._resolutions)}


def _values(table: tuple[list, list]) -> tuple[list, list]:
    population, cumulative = table
    return [v.value for v in population], cumulative


def journey_of(master: MasterData, ret: dict[str, Any]) -> Journey:
    """A requested return, with the model's eligibility rules applied to what the portal made."""
    order = master.orders[ret["order_id"]]
    customer = master.customers[order.customer_id]
    requested = datetime.fromisoformat(ret["requested_at"])
    age_days = (requested - order.delivered_at).total_seconds() / DAY_S
    reason = "customer-on-hold" if customer.account_status == "on_hold" else (
        "outside-window" if age_days > master.policy.window_days else None)
    return Journey(
        return_id=ret["id"], order_id=order.id, customer_id=customer.id, resolution=ret["resolution"],
        requested_at=ret["requested_at"], eligible=reason is None, ineligible_reason=reason,
        reasons={l["item_id"]: l["reason"] for l in ret["lines"]},
        prices={l["item_id"]: l["unit_price"]["amount"] for l in ret["lines"]},
    )


_GRADERS: dict[int, tuple[Scenario, Grader]] = {}


def grade(rng: random.Random, master: MasterData, scenario: Scenario, units: dict[str, int], reasons: dict[str, str]) -> list[list]:
    """Condition and disposition of the received units, graded by the model's own rules (its
    tables built once per scenario), as [item, quantity, condition, disposition]."""
    entry = _GRADERS.get(id(scenario))
    if entry is None or entry[0] is not scenario:
        entry = _GRADERS[id(scenario)] = (scenario, Grader(scenario.warehouse, master))
    graded = entry[1].grade(rng, units, {item: ReturnReason(reason) for item, reason in reasons.items()})
    return [[u.item_id, u.quantity, u.condition.value, u.disposition.value] for u in graded]


def outcome(journey: dict[str, Any], status: str | None) -> str:
    """Where the return ended: what the load left it at, or stalled where the layer owed a move."""
    if not journey["eligible"]:
        return "rejected"
    if status is None or RANK.get(status, -1) < RANK[OWED[journey["stage"]]]:
        return f"stalled:awaiting-{WAITING[journey['stage']]}"
    if journey["stage"] == "inspected":
        return "closed"
    return f"load-stopped:{journey['stage']}"


def settled(journey: dict[str, Any], status: str | None) -> bool:
    """The layer did all it owes for what the load sent (so waiting longer changes nothing)."""
    if status is None:
        return False
    if not journey["eligible"]:
        return status in ("rejected", "cancelled")
    return RANK.get(status, -1) >= RANK[OWED[journey["stage"]]]


def expectation(master: MasterData, journey: dict[str, Any], status: str | None) -> dict[str, Any]:
    """The oracle's expectation for one journey (an Expectation, as a record)."""
    requested = datetime.fromisoformat(journey["requested_at"])
    exp = Expectation(
        return_id=journey["return_id"], order_id=journey["order_id"], customer_id=journey["customer_id"],
        resolution=Resolution(journey["resolution"]), requested_at=(requested - master.config.epoch).total_seconds(),
        eligible=journey["eligible"], ineligible_reason=journey["ineligible_reason"], site_id=journey["site_id"],
        outcome=outcome(journey, status), received=dict(journey["received"]),
    )
    if journey["stage"] == "inspected":
        exp.inspected = [InspectedUnits(i, q, Condition(c), Disposition(d)) for i, q, c, d in journey["inspected"]]
        exp.settle_inspection(master.policy, journey["prices"], {k: ReturnReason(v) for k, v in journey["reasons"].items()})
    return exp.as_record()


def counter() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n
