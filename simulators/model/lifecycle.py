"""The life of every return, as SimPy processes that drive the fakes through their stores.

A customer requests a return in the portal; from then on the model only moves what the
integration layer made possible: a parcel ships once the return is approved with a label the
carrier knows, the warehouse receives what arrives, and inspects what it received. Whatever the
integration layer never does, the return waits for, until it is declared stalled at that stage.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Generator
from datetime import datetime, timedelta

import simpy

from simulators.domain import (
    Category,
    Resolution,
    ReturnReason,
    ReturnStatus,
    TrackingStatus,
    plain_id,
)
from simulators.fakekit.pipeline import CallContext
from simulators.model.demand import DAY, arrival_times
from simulators.model.draws import pick, table
from simulators.model.expected import Expectation, InspectedUnits
from simulators.model.grading import Grader
from simulators.model.orders import OrderBook
from simulators.model.trace import Trace
from simulators.returns_portal.store import ReturnLineRequest, ReturnRequest
from simulators.scenario import Scenario
from simulators.wms.store import (
    InspectionLineRequest,
    InspectionRequest,
    ItemQuantity,
    ReceiptRequest,
)

HOUR = 3600.0
# Where a return can end; anything else (but a stall) is still on its way.
TERMINAL = frozenset({"closed", "rejected", "cancelled", "never-shipped", "returned-to-sender"})
POLL_S = 15 * 60  # how often a waiting customer or parcel looks again (simulated)
STALL_AFTER_S = 3 * DAY  # no progress for this long: the return is stalled at its stage
# ... and, in live mode, for at least this many wall seconds: waiting on the layer is the layer's
# time, which the compressed world must not cut short (a layer polling its inbox every few
# seconds is correct; at 50,000x three business days are five wall seconds).
STALL_AFTER_WALL_S = 15.0
# ... unless the layer is still at work (it called a fake within the last STALL_AFTER_WALL_S:
# backing off under throttling, or a backlog that has not reached this return yet, is not
# stalling), up to this long at most.
STALL_AT_MOST_WALL_S = 60.0
# The facts each wait on the layer needs: when every delivery of one of them had to be refused
# (malformed, forged, stale), no layer can act, and the live world stops waiting (see World.hopeless).
APPROVAL_NEEDS = frozenset({"return.created"})
REFUND_NEEDS = frozenset({"receipt.completed", "inspection.completed"})
# What a return still waiting on the layer when the settle phase runs out is stalled at.
AWAITING = {"requested": "stalled:awaiting-approval", "inspected": "stalled:awaiting-refund"}

# Why customers return, by category (apparel is mostly fit; electronics mostly faults).
REASONS: dict[Category, dict[ReturnReason, float]] = {
    Category.APPAREL: {ReturnReason.SIZE_FIT: 0.55, ReturnReason.CHANGED_MIND: 0.2, ReturnReason.NOT_AS_DESCRIBED: 0.1,
                       ReturnReason.DEFECTIVE: 0.05, ReturnReason.WRONG_ITEM: 0.05, ReturnReason.DAMAGED_IN_TRANSIT: 0.05},
    Category.ELECTRONICS: {ReturnReason.DEFECTIVE: 0.35, ReturnReason.CHANGED_MIND: 0.3, ReturnReason.NOT_AS_DESCRIBED: 0.15,
                           ReturnReason.DAMAGED_IN_TRANSIT: 0.1, ReturnReason.WRONG_ITEM: 0.1},
    Category.HOME: {ReturnReason.CHANGED_MIND: 0.35, ReturnReason.DAMAGED_IN_TRANSIT: 0.25, ReturnReason.NOT_AS_DESCRIBED: 0.2,
                    ReturnReason.DEFECTIVE: 0.1, ReturnReason.WRONG_ITEM: 0.1},
    Category.BEAUTY: {ReturnReason.CHANGED_MIND: 0.5, ReturnReason.NOT_AS_DESCRIBED: 0.25, ReturnReason.WRONG_ITEM: 0.1,
                      ReturnReason.DAMAGED_IN_TRANSIT: 0.15},
}
CUSTOMER = CallContext(principal="customer", correlation_id=None, idempotency_key=None)
FLOOR = CallContext(principal="warehouse", correlation_id=None, idempotency_key=None)


def _befalls(name: str, fate: str | None, rng: random.Random, rate: float) -> bool:
    """Whether ``name`` happens to a return: what the sweep chose for it, if it chose, else a draw."""
    return fate == name if fate is not None else rng.random() < rate


def ended(stage: str) -> bool:
    return stage in TERMINAL or stage.startswith("stalled")


class ReturnsModel:
    def __init__(self, env: simpy.Environment, scenario: Scenario, stores: dict, trace: Trace,
                 on_expectation: Callable[[Expectation], None],
                 on_finished: Callable[[Expectation, str | None], None] = lambda exp, receipt_id: None,
                 *, lean: bool = False, stall_after_wall_s: float = 0.0,
                 layer_quiet_s: Callable[[], float] = lambda: math.inf,
                 hopeless: Callable[[str, frozenset[str]], bool] = lambda return_id, needs: False) -> None:
        """``on_expectation`` hears of each return when requested, ``on_finished`` when it ends
        (with its receipt id, if any). A ``lean`` model forgets what an ended return needed. A
        live one waits on the layer for ``stall_after_wall_s`` at least (STALL_AFTER_WALL_S), and
        longer while ``layer_quiet_s()`` (wall seconds since the layer's last call to any fake)
        says the layer is still at work; not at all once ``hopeless(return id, facts needed)``
        says the layer was only ever handed refusable copies of one of those facts."""
        self.env = env
        self.scenario = scenario
        self.portal, self.carrier, self.wms = stores["returns_portal"], stores["carrier"], stores["wms"]
        self.master = self.portal.master
        self.policy = self.master.policy
        self.trace = trace
        self.on_expectation = on_expectation
        self.on_finished = on_finished
        seed = scenario.seed
        self.seed = seed
        # Draws made when a return is requested come from shared streams (demand decides that
        # order). What happens after the integration layer acted (the customer ships, the carrier
        # carries, the warehouse grades) draws from a stream of the return's own: in live mode
        # returns reach those steps in the layer's order, and the same seed must still give each
        # return the same fate.
        self.rng = {part: random.Random(f"{seed}:{part}") for part in ("demand", "customer")}
        # Late requests reach back 30 days past the window (tolerance 0.5): older orders are out of reach.
        self.orders = OrderBook(self.master, random.Random(f"{seed}:orders"),
                                prune_after_days=self.policy.window_days + 32 if lean else None)
        w = scenario.warehouse
        self._reasons = {category: table(shares) for category, shares in REASONS.items()}
        self._resolutions = table(scenario.customer.resolution_mix)
        self.grader = Grader(w, self.master)
        self._receipt_of: dict[str, str] = {}  # return id -> receipt id, while the return is on its way
        self._open: dict[str, Expectation] = {}  # returns on their way (an ended one is the listener's)
        self.receiving = {site: simpy.Resource(env, w.receiving_capacity) for site in self.master.sites}
        self.inspecting = {site: simpy.Resource(env, w.inspection_capacity) for site in self.master.sites}
        self.stages: Counter[str] = Counter()  # where each return stands now
        self.requested = 0
        self.misrouted = 0  # parcels delivered to another site than their label's
        self.cancelled_early = 0  # returns cancelled before the layer could approve them
        self.partial = 0  # parcels that arrived with fewer units than the return announced
        # Returns waiting on the layer right now (for its approval with a label, or its close), not
        # on the world: one the settle phase leaves here is stalled there; one whose customer has
        # not shipped yet, say, is merely unfinished.
        self.awaiting_layer: set[str] = set()
        self.demand_done = False
        self.stall_after_s = max(STALL_AFTER_S, stall_after_wall_s * scenario.time_scale)
        self.stall_at_most_s = max(self.stall_after_s, STALL_AT_MOST_WALL_S * scenario.time_scale) if stall_after_wall_s else self.stall_after_s
        self.stall_after_wall_s = stall_after_wall_s
        self.layer_quiet_s = layer_quiet_s
        self.hopeless = hopeless

    # --- helpers ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.scenario.epoch + timedelta(seconds=self.env.now)

    def _move(self, exp: Expectation, stage: str, **fields) -> None:
        self.stages[exp.outcome] -= 1
        exp.outcome = stage
        self.stages[stage] += 1
        self.trace.emit(self.env.now, stage, return_id=exp.return_id, **fields)
        if ended(stage):
            del self._open[exp.return_id]
            self.orders.release(exp.order_id)
            self.on_finished(exp, self._receipt_of.pop(exp.return_id, None))

    def _own_rng(self, part: str, exp: Expectation) -> random.Random:
        return random.Random(f"{self.seed}:{part}:{plain_id(exp.return_id, self.portal.run_id)}")

    def _lognormal_s(self, rng: random.Random, median_days: float, sigma: float) -> float:
        return rng.lognormvariate(math.log(median_days * DAY), sigma)

    def _wait_for(self, exp: Expectation, needs: frozenset[str], ready: Callable[[], bool]) -> Generator:
        """Look again every POLL_S until ready; False when stalled: no move for stall_after_s, and
        (live) the layer quiet for stall_after_wall_s, or stall_at_most_s passed, or hopeless."""
        deadline, last = self.env.now + self.stall_after_s, self.env.now + self.stall_at_most_s
        while not ready():
            if self.env.now >= last or self.env.now >= deadline and self.layer_quiet_s() >= self.stall_after_wall_s \
                    or self.hopeless(exp.return_id, needs):
                return False
            yield self.env.timeout(POLL_S)
        return True

    def _in_shift(self) -> Generator:
        w = self.scenario.warehouse
        hour = self.now().hour + self.now().minute / 60
        if hour < w.shift_start_hour:
            yield self.env.timeout((w.shift_start_hour - hour) * HOUR)
        elif hour >= w.shift_end_hour:
            yield self.env.timeout((24 - hour + w.shift_start_hour) * HOUR)

    def open_expectations(self) -> list[Expectation]:
        """Returns requested and not yet ended, oldest first."""
        return list(self._open.values())

    # --- processes -------------------------------------------------------------------------

    def start(self) -> None:
        self.env.process(self._demand())

    def _demand(self) -> Generator:
        v = self.scenario.volumes
        times = arrival_times(self.rng["demand"], returns_per_day=v.returns_per_day, days=v.days, profile=v.profile, epoch=self.scenario.epoch)
        for t in times:
            if v.max_returns is not None and self.requested >= v.max_returns:
                break
            yield self.env.timeout(t - self.env.now)
            self.requested += 1
            self.env.process(self._return())
        self.demand_done = True

    def _return(self) -> Generator:
        exp = self._request()
        if exp is None:
            return
        fate = self._swept_fate(exp)
        rate = self.scenario.customer.cancel_requested_rate
        at_once = fate == "cancelled-at-once" or fate is None and rate and self._own_rng("cancel-early", exp).random() < rate
        # Changed their mind at once: cancelled before any layer could approve (a virtual stand-in,
        # which answers within the same instant, may have rejected it already). It must stay so.
        if at_once and self._status(exp) in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
            self.portal.cancel(exp.return_id, CUSTOMER)
            self.cancelled_early += 1
            return self._move(exp, "cancelled")
        self.awaiting_layer.add(exp.return_id)
        approved = yield from self._wait_for(
            exp, APPROVAL_NEEDS, lambda: self._status(exp) in (ReturnStatus.APPROVED, ReturnStatus.REJECTED, ReturnStatus.CANCELLED)
            and (self._status(exp) is not ReturnStatus.APPROVED or self._label(exp) is not None),
        )
        self.awaiting_layer.discard(exp.return_id)
        status = self._status(exp)
        if not approved:
            return self._move(exp, "stalled:awaiting-approval")
        if status is not ReturnStatus.APPROVED:
            return self._move(exp, status.value)
        c = self.scenario.customer
        rng = self._own_rng("customer", exp)
        if _befalls("cancelled", fate, rng, c.cancel_rate):
            yield self.env.timeout(rng.uniform(1, 24) * HOUR)
            self.portal.cancel(exp.return_id, CUSTOMER)
            return self._move(exp, "cancelled")
        if _befalls("never-shipped", fate, rng, c.never_ship_rate):
            return self._move(exp, "never-shipped")
        yield self.env.timeout(self._lognormal_s(rng, c.ship_delay_days_median, c.ship_delay_sigma))
        tracking_code, site = self._label(exp)
        exp.site_id = self._misrouted(exp, site, fate)
        arrived = yield from self._transit(exp, tracking_code, fate)
        if arrived:
            yield from self._warehouse(exp, tracking_code, fate)

    def _status(self, exp: Expectation) -> ReturnStatus:
        return self.portal.returns[exp.return_id].status

    def _label(self, exp: Expectation) -> tuple[str, str] | None:
        """The parcel's tracking code and destination site, once the carrier knows the label."""
        label = self.portal.returns[exp.return_id].label
        tracker = label and self.carrier.trackers.get(label.tracking_code)
        if not tracker:
            return None
        return tracker.tracking_code, self.carrier.labels[tracker.label_id].to_site_id

    def _request(self) -> Expectation | None:
        c = self.scenario.customer
        rng = self.rng["customer"]
        window = self.policy.window_days
        late = rng.random() < c.late_request_rate
        if late:
            age = rng.uniform(window + 1, window + 30)
        else:  # order-to-return age peaks near 20 days, inside the window
            age = rng.triangular(0.5, window - 0.5, min(c.request_age_mode_days, window - 0.5))
        order = self.orders.pick(self.now(), age)
        taken = self.orders.take(order)
        lines = [
            ReturnLineRequest(line_number=line.line_number, quantity=units,
                                              reason=pick(rng, self._reasons[self.master.items[line.item_id].category]))
            for line, units in taken
        ]
        resolution = pick(rng, self._resolutions)
        customer = self.master.customers[order.customer_id]
        ret = self.portal.create_return(ReturnRequest(order_id=order.id, customer_email=customer.email, lines=lines,
                                                                      resolution=resolution), CUSTOMER)
        ineligible = "customer-on-hold" if customer.account_status.value == "on_hold" else ("outside-window" if late else None)
        exp = Expectation(
            return_id=ret.id, order_id=order.id, customer_id=customer.id, resolution=Resolution(resolution),
            requested_at=self.env.now, eligible=ineligible is None, ineligible_reason=ineligible,
        )
        self.on_expectation(exp)
        self._open[exp.return_id] = exp
        self.stages["requested"] += 1
        self.trace.emit(self.env.now, "requested", return_id=ret.id, order_id=order.id, resolution=resolution,
                        lines=[[l.line_number, l.quantity, l.reason.value] for l in lines], eligible=exp.eligible)
        return exp

    def _misrouted(self, exp: Expectation, site: str, fate: str | None) -> str:
        """The site the parcel reaches: its label's, or (misroute_rate, or the sweep's) another one."""
        rate = self.scenario.carrier.misroute_rate
        if fate != "misrouted" and not (fate is None and rate and self._own_rng("route", exp).random() < rate):
            return site
        others = sorted(s for s in self.master.sites if s != site)
        if not others:
            return site
        self.misrouted += 1
        return others[int(exp.return_id.rsplit("-", 1)[-1]) % len(others)]

    def _swept_fate(self, exp: Expectation) -> str | None:
        """With a sweep, every behaviour happens by construction, chosen by the return's number
        (order-free, as the per-return streams are): of every 18 returns, one is cancelled at once, three
        are cancelled after approval, one never ships, one goes back to its sender, two reach another
        site and two arrive a unit short (when they hold more than one); the rest draw their fate."""
        if self.scenario.faults.sweep is None:
            return None
        n = int(exp.return_id.rsplit("-", 1)[-1])
        return {3: "cancelled", 9: "cancelled", 15: "cancelled", 5: "never-shipped", 13: "returned-to-sender",
                7: "misrouted", 11: "misrouted", 17: "cancelled-at-once", 1: "partial", 10: "partial"}.get(n % 18)

    def _transit(self, exp: Expectation, code: str, fate: str | None = None) -> Generator:
        m = self.scenario.carrier
        rng = self._own_rng("carrier", exp)
        city = self.master.customers[exp.customer_id].address.city
        transit = self._lognormal_s(rng, m.transit_days_median, m.transit_sigma)
        self.carrier.add_scan(code, TrackingStatus.IN_TRANSIT, "Picked up", city, self.now())
        self._move(exp, "in-transit", tracking_code=code)
        yield self.env.timeout(transit * 0.45)
        self.carrier.add_scan(code, TrackingStatus.IN_TRANSIT, "Arrived at carrier facility", "Hub", self.now())
        if _befalls("returned-to-sender", fate, rng, m.return_to_sender_rate):
            yield self.env.timeout(transit * 0.2)
            self.carrier.add_scan(code, TrackingStatus.EXCEPTION, "Address unreadable", "Hub", self.now())
            self.carrier.add_scan(code, TrackingStatus.RETURN_TO_SENDER, "Returned to sender", "Hub", self.now())
            self._move(exp, "returned-to-sender")
            return False
        if rng.random() < m.exception_rate:
            self.carrier.add_scan(code, TrackingStatus.EXCEPTION, "Delayed: weather", "Hub", self.now())
            yield self.env.timeout(DAY)
        yield self.env.timeout(max(0.0, transit * 0.55 - 6 * HOUR))
        site = self.master.sites[exp.site_id]
        self.carrier.add_scan(code, TrackingStatus.OUT_FOR_DELIVERY, "Out for delivery", site.address.city, self.now())
        yield self.env.timeout(min(6 * HOUR, transit * 0.55))
        self.carrier.add_scan(code, TrackingStatus.DELIVERED, "Delivered to warehouse dock", site.address.city, self.now())
        self._move(exp, "delivered")
        return True

    def _warehouse(self, exp: Expectation, code: str, fate: str | None = None) -> Generator:
        w = self.scenario.warehouse
        rng = self._own_rng("warehouse", exp)
        ret = self.portal.returns[exp.return_id]
        units = Counter()
        for line in ret.lines:
            units[line.item_id] += line.quantity
        if _befalls("partial", fate, rng, w.partial_receipt_rate) and sum(units.values()) > 1:
            short = rng.choice(sorted(units))
            units[short] -= 1
            self.partial += 1
        units = +units  # drop items with no unit left
        with self.receiving[exp.site_id].request() as slot:
            yield slot
            yield from self._in_shift()
            yield self.env.timeout(rng.expovariate(1 / (w.receive_minutes * 60)))
        receipt = self.wms.create_receipt(
            ReceiptRequest(site_id=exp.site_id, rma_id=ret.rma_id, tracking_code=code,
                                           lines=[ItemQuantity(item_id=i, quantity=q) for i, q in sorted(units.items())]),
            FLOOR,
        )
        self._receipt_of[exp.return_id] = receipt.id
        exp.received = dict(units)
        self._move(exp, "received", receipt_id=receipt.id, blind=receipt.blind)
        with self.inspecting[exp.site_id].request() as slot:
            yield slot
            yield from self._in_shift()
            yield self.env.timeout(rng.expovariate(1 / (w.inspect_minutes * 60)))
        reasons = {line.item_id: line.reason for line in ret.lines}
        exp.inspected = self.grader.grade(rng, units, reasons)
        inspection = self.wms.create_inspection(
            InspectionRequest(receipt_id=receipt.id, lines=[
                InspectionLineRequest(item_id=u.item_id, quantity=u.quantity, condition=u.condition, disposition=u.disposition,
                                                      serial_numbers=self._serials(exp, group, u))
                for group, u in enumerate(exp.inspected)
            ]),
            FLOOR,
        )
        prices = {line.item_id: line.unit_price.amount for line in ret.lines}
        exp.settle_inspection(self.policy, prices, reasons)
        self._move(exp, "inspected", inspection_id=inspection.id, refund_cents=exp.refund_cents,
                   units=[[u.item_id, u.quantity, u.condition.value, u.disposition.value] for u in exp.inspected])
        self.awaiting_layer.add(exp.return_id)
        closed = yield from self._wait_for(exp, REFUND_NEEDS, lambda: self._status(exp) is ReturnStatus.CLOSED)
        self.awaiting_layer.discard(exp.return_id)
        self._move(exp, "closed" if closed else "stalled:awaiting-refund")

    def _serials(self, exp: Expectation, group: int, units: InspectedUnits) -> list[str] | None:
        if not self.master.items[units.item_id].serial_controlled:
            return None
        return [f"SN-{exp.return_id}-{group}-{n}" for n in range(units.quantity)]
