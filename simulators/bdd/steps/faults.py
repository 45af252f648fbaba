"""Given steps that break things: faults on the events delivered to the integration layer, and
on the fakes' APIs (outages, throttling, lost responses, errors, latency)."""

from __future__ import annotations

from datetime import datetime, timedelta

from simulators.bdd import vocabulary as v
from simulators.bdd.steps.registry import step
from simulators.bdd.world import WorldUnderTest

OUT_OF_ORDER_S = 86_400  # held a day: later events of the return overtake it
BAD = {"with a forged signature": "forged_rate", "malformed": "malformed_rate",
       "with a stale signature": "clock_skew_rate", "signed with the old and the new secret": "rotation_rate"}


def _events(system: str, events: str) -> tuple[str, list[str]]:
    sender = v.system(system)
    return sender, v.event_types(sender, events)


@step("given", "the {system:System} delivers {share:Share} {events} twice",
      example="Given the WMS delivers every inspection event twice")
def duplicate(returns_world: WorldUnderTest, system: str, share: str, events: str) -> None:
    """Redelivery of the same event (same event id), as at-least-once webhooks do. `events` names the
    system's events: portal `new return`, `cancellation`; carrier `scan`; WMS `receipt`, `inspection`;
    or `event(s)` for all of them."""
    _, types = _events(system, events)
    returns_world.fault_events(types, duplicate_rate=v.share(share))


@step("given", "the {system:System} sends {share:Share} {events} again under a new event id",
      example="Given the carrier sends every scan again under a new event id")
def semantic_duplicate(returns_world: WorldUnderTest, system: str, share: str, events: str) -> None:
    """The same fact announced again under a new event id (a double scan, a repeated receipt)."""
    _, types = _events(system, events)
    returns_world.fault_events(types, semantic_duplicate_rate=v.share(share))


@step("given", "the {system:System} delivers {share:Share} {events} out of order",
      example="Given the carrier delivers 50% of its scans out of order")
def out_of_order(returns_world: WorldUnderTest, system: str, share: str, events: str) -> None:
    """Events held back a day, so the return's later events overtake them (a scan after the refund)."""
    _, types = _events(system, events)
    returns_world.fault_events(types, reorder_rate=v.share(share), reorder_window_s=OUT_OF_ORDER_S)


@step("given", "the {system:System} delivers {share:Share} {events} {amount:Number} {unit:Unit} late",
      example="Given the WMS delivers every receipt event 1 day late")
def late(returns_world: WorldUnderTest, system: str, share: str, events: str, amount: str, unit: str) -> None:
    """Events held back exactly this long (simulated time): e.g. receipts a day late make every
    inspection arrive before its receipt."""
    _, types = _events(system, events)
    returns_world.fault_events(types, reorder_rate=v.share(share), reorder_window_s=v.duration(amount, unit))


@step("given", "the carrier never sends {share:Share} scans", example="Given the carrier never sends 30% of scans")
def missing_scans(returns_world: WorldUnderTest, share: str) -> None:
    """Carrier scans that are never sent (the parcel still travels)."""
    returns_world.fault_events(["tracking.updated"], missing_scan_rate=v.share(share))


@step("given", "{share:Share} {events} from the {system:System} {arrive:Arrive} {how}",
      example="Given 30% of new return events from the portal arrive with a forged signature")
def bad_deliveries(returns_world: WorldUnderTest, share: str, events: str, system: str, arrive: str, how: str) -> None:
    """Deliveries a correct layer must refuse without acting: `with a forged signature`, `malformed`,
    `with a stale signature` (timestamp 10 minutes off); or must accept: `signed with the old and
    the new secret` (a secret rotation)."""
    _, types = _events(system, events)
    rate = BAD.get(how.strip().lower())
    if rate is None:
        raise v.bad_value(f"unknown kind of delivery {how!r}; expected one of: {', '.join(BAD)}")
    returns_world.fault_events(types, **{rate: v.share(share)})


@step("given", "the {system:System} is down from day {day:Number} {time} for {amount:Number} {unit:Unit}",
      example="Given the ERP is down from day 1 09:00 for 2 hours")
def outage(returns_world: WorldUnderTest, system: str, day: str, time: str, amount: str, unit: str) -> None:
    """A maintenance window in business time: every call answers 503 with Retry-After. Day 1 is the
    scenario's first day. Faults heal when demand ends, so keep the window inside the request days."""
    from simulators.seed import (
        DEFAULT_EPOCH,  # not at import: the plugin loads in every pytest run
    )

    target = v.system(system)
    epoch = returns_world.get("epoch")
    epoch = datetime.fromisoformat(epoch) if isinstance(epoch, str) else DEFAULT_EPOCH
    start = v.day_time(epoch, day, time)
    end = start + timedelta(seconds=v.duration(amount, unit))
    returns_world.fault_api(target, kind="outage", active_from=start.isoformat(), active_until=end.isoformat())


@step("given", "the {system:System} answers 429 above {n:Number} requests per second",
      example="Given the ERP answers 429 above 20 requests per second")
def rate_limit(returns_world: WorldUnderTest, system: str, n: str) -> None:
    """A rate limit (wall-clock seconds): above it, 429 with Retry-After."""
    returns_world.fault_api(v.system(system), kind="rate_limit", limit=v.count(n, "requests per second"), per_s=1)


@step("given", "the {system:System} commits {share:Share} {writes}, then loses the response",
      example="Given the ERP commits 30% of credit memos, then loses the response")
def commit_then_lose(returns_world: WorldUnderTest, system: str, share: str, writes: str) -> None:
    """The write is done, the answer never arrives: only a client that retries with the same
    Idempotency-Key avoids doing it twice. `writes` names the system's documents (ERP: return
    authorizations, credit memos, inventory adjustments, supplier claims, replacement orders; WMS:
    expected receipts; carrier: labels) or `writes` for all."""
    target = v.system(system)
    method, path = v.write(target, writes)
    returns_world.fault_api(target, kind="commit_then_lose", method=method, path=path, probability=v.share(share))


@step("given", "the {system:System} fails {share:Share} {writes} with {status:Number}",
      example="Given the carrier fails 20% of labels with 503")
def errors(returns_world: WorldUnderTest, system: str, share: str, writes: str, status: str) -> None:
    """Server errors (5xx) on some writes; nothing is written."""
    target = v.system(system)
    code = v.number(status, "status")
    if code != int(code) or not 500 <= code <= 599:
        raise v.bad_value(f"the status must be a 5xx server error, got {status}")
    method, path = v.write(target, writes)
    returns_world.fault_api(target, kind="error", method=method, path=path, probability=v.share(share), status=int(code))


@step("given", "the {system:System} takes {amount:Number} {unit:Unit} to answer", example="Given the WMS takes 200 ms to answer")
def latency(returns_world: WorldUnderTest, system: str, amount: str, unit: str) -> None:
    """Every call to the system waits this long (wall time) before it is answered."""
    returns_world.fault_api(v.system(system), kind="latency", latency_ms=round(v.duration(amount, unit) * 1000))
