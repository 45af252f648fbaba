"""Given steps that set up the world: scenario, seed, volumes, customers, policy, warehouse and channels."""

from __future__ import annotations

import re
import socket

import pytest

from simulators.bdd import vocabulary as v
from simulators.bdd.steps.registry import step
from simulators.bdd.world import WorldUnderTest

RESOLUTIONS = {"a refund": "refund", "refunds": "refund", "an exchange": "exchange", "exchanges": "exchange",
               "store credit": "store_credit"}
DISPOSITIONS = {"restock": "restock", "refurbish": "refurbish", "scrap": "scrap", "quarantine": "quarantine",
                "return to vendor": "return_to_vendor", "return-to-vendor": "return_to_vendor", "the vendor": "return_to_vendor"}
CONDITIONS = ("new", "opened", "damaged", "defective")
PROFILES = ("steady", "post-holiday peak", "promotion spike", "recall")


def _one_of(value: str, choices, what: str) -> str:
    key = value.strip().lower()
    if key not in choices:
        raise v.bad_value(f"unknown {what} {value!r}; expected one of: {', '.join(choices)}")
    return choices[key] if isinstance(choices, dict) else key


@step("given", 'the scenario "{name}"', example='Given the scenario "baseline"')
def scenario_file(returns_world: WorldUnderTest, name: str) -> None:
    """Start from a shipped scenario (`baseline`, `chaos`, ...) or a YAML file, relative to the
    feature file, instead of the library's quiet default day. Later steps change it further."""
    returns_world.start_from(name)


@step("given", "the seed {seed:Number}", example="Given the seed 7")
def seed(returns_world: WorldUnderTest, seed: str) -> None:
    """The seed of master data, demand and faults: the same seed replays the same world."""
    value = v.number(seed, "the seed", minimum=0)
    if value != int(value):
        raise v.bad_value(f"the seed must be a whole number, got {seed}")
    returns_world.set("seed", int(value))


@step("given", "{days:Number} days of return requests", "{days:Number} day of return requests",
      example="Given 2 days of return requests")
def days(returns_world: WorldUnderTest, days: str) -> None:
    """How many simulated days customers request returns (the run goes on until they all end)."""
    value = v.number(days, "days of return requests")
    if value <= 0:
        raise v.bad_value(f"days of return requests must be positive, got {days}")
    returns_world.set("volumes.days", value)


@step("given", "about {n:Number} return requests a day", example="Given about 40 return requests a day")
def per_day(returns_world: WorldUnderTest, n: str) -> None:
    """The average demand of a day at profile level 1 (hour of day and weekday shape it)."""
    returns_world.set("volumes.returns_per_day", v.number(n, "return requests a day", minimum=1))


@step("given", "demand follows the {profile} profile", example="Given demand follows the post-holiday peak profile")
def profile(returns_world: WorldUnderTest, profile: str) -> None:
    """The season's shape: steady, post-holiday peak (26 December, about 3x), promotion spike or recall."""
    returns_world.set("volumes.profile", _one_of(profile, PROFILES, "demand profile").replace(" ", "-"))


@step("given", "the simulated clock runs {n:Number} times faster than real time",
      example="Given the simulated clock runs 30000 times faster than real time")
def time_scale(returns_world: WorldUnderTest, n: str) -> None:
    """Simulated seconds per wall second (the library's default is 120000: a day in 0.7 s).
    Lower it when an SLA in business hours must not depend on the machine's speed."""
    returns_world.set("time_scale", v.number(n, "the time scale", minimum=1))


@step("given", "{share:Share} customers {ask:Ask} for {resolution}", "{share:Share} customer {ask:Ask} for {resolution}",
      example="Given every customer asks for an exchange")
def resolution(returns_world: WorldUnderTest, share: str, ask: str, resolution: str) -> None:
    """What customers want back: a refund, an exchange or store credit (the others share the rest)."""
    wanted, part = _one_of(resolution, RESOLUTIONS, "resolution"), v.share(share)
    others = [r for r in ("refund", "exchange", "store_credit") if r != wanted]
    returns_world.set("customer.resolution_mix", {wanted: part, **{r: (1 - part) / len(others) for r in others}})


@step("given", "{share:Share} requests {be:Be} made after the return window", "{share:Share} request {be:Be} made after the return window",
      example="Given every request is made after the return window")
def late(returns_world: WorldUnderTest, share: str, be: str) -> None:
    """Requests made after the policy's window: the integration layer must reject them."""
    returns_world.set("customer.late_request_rate", v.share(share))


@step("given", "{share:Share} customers {be:Be} on hold", "{share:Share} customer {be:Be} on hold",
      example="Given every customer is on hold")
def on_hold(returns_world: WorldUnderTest, share: str, be: str) -> None:
    """Customers on credit or fraud hold in the ERP: their returns must be rejected."""
    returns_world.set("seed_data.on_hold_share", v.share(share))


@step("given", "{share:Share} customers cancel before shipping", "{share:Share} customer cancels before shipping",
      example="Given 20% of customers cancel before shipping")
def cancel(returns_world: WorldUnderTest, share: str) -> None:
    """Customers who cancel their approved return in the portal: nothing more may happen to it."""
    returns_world.set("customer.cancel_rate", v.share(share))


@step("given", "the warehouse sends every unit to {disposition}", example="Given the warehouse sends every unit to refurbish")
def disposition(returns_world: WorldUnderTest, disposition: str) -> None:
    """Every inspected unit gets this disposition: restock, refurbish, scrap, quarantine or return to vendor."""
    chosen = _one_of(disposition, DISPOSITIONS, "disposition")
    returns_world.set("warehouse.disposition_by_condition", {c: {chosen: 1.0} for c in CONDITIONS})


@step("given", "the warehouse finds most units {condition}", example="Given the warehouse finds most units opened")
def condition(returns_world: WorldUnderTest, condition: str) -> None:
    """The condition graded at inspection: new, opened, damaged or defective. "Most", because a
    return's reason still decides some grades (an item returned as defective is graded defective)."""
    graded = _one_of(condition, CONDITIONS, "condition")
    returns_world.set("warehouse.condition_mix", {graded: 1.0})


@step("given", "{share:Share} parcels {arrive:Arrive} with a unit missing", "{share:Share} parcel {arrive:Arrive} with a unit missing",
      example="Given every parcel arrives with a unit missing")
def partial(returns_world: WorldUnderTest, share: str, arrive: str) -> None:
    """Partial receipts: a parcel of several units arrives one short (single-unit parcels cannot)."""
    returns_world.set("warehouse.partial_receipt_rate", v.share(share))


@step("given", "the warehouse splits {share:Share} lines between two dispositions",
      "the warehouse splits {share:Share} line between two dispositions",
      example="Given the warehouse splits every line between two dispositions")
def split(returns_world: WorldUnderTest, share: str) -> None:
    """Split dispositions: one unit of a multi-unit line is graded apart from the others."""
    returns_world.set("warehouse.split_disposition_rate", v.share(share))


@step("given", "the warehouse has {n:Number} inspectors per site", "the warehouse has {n:Number} inspector per site",
      example="Given the warehouse has 1 inspector per site")
def inspectors(returns_world: WorldUnderTest, n: str) -> None:
    """Inspection capacity per site (fewer inspectors build a backlog in a peak)."""
    returns_world.set("warehouse.inspection_capacity", v.count(n, "inspectors per site"))


@step("given", "inspecting a return takes about {amount:Number} {unit:Unit}", example="Given inspecting a return takes about 4 hours")
def inspection_time(returns_world: WorldUnderTest, amount: str, unit: str) -> None:
    """The mean time an inspector spends on one return (exponentially distributed)."""
    returns_world.set("warehouse.inspect_minutes", v.duration(amount, unit) / 60)


@step("given", "the {system:System} publishes {events} to the message broker",
      example="Given the WMS publishes its receipts and inspections to the message broker")
def by_broker(returns_world: WorldUnderTest, system: str, events: str) -> None:
    """These facts travel by RabbitMQ instead of webhooks (docs/CONTRACT.md, "Message broker"):
    `receipts`, `inspections`, `receipts and inspections` or `events`. Needs a broker on
    127.0.0.1:5672 (guest, or RH_BROKER_USER / RH_BROKER_PASSWORD): the scenario is skipped,
    saying so, when none answers there."""
    sender = v.system(system)
    words = [w for w in re.split(r",|\band\b", events.strip().lower().removeprefix("its ")) if w.strip()]
    types = sorted({t for w in words for t in v.event_types(sender, w)})
    if not _broker_listening():
        pytest.skip("no message broker answers on 127.0.0.1:5672 (start RabbitMQ: rabbitmq-server -detached)")
    returns_world.set("channels.broker", {"events": types})


@step("given", "the {system:System} exports {events} in batch files every {amount:Number} {unit:Unit}",
      example="Given the WMS exports its receipts and inspections in batch files every 6 hours")
def by_batch(returns_world: WorldUnderTest, system: str, events: str, amount: str, unit: str) -> None:
    """These facts go in CSV files on the harness's SFTP server instead of webhooks, one file
    per export (docs/CONTRACT.md, "Batch files"): `receipts`, `inspections`, `receipts and
    inspections` or `events`. Needs nothing beyond the package."""
    sender = v.system(system)
    words = [w for w in re.split(r",|\band\b", events.strip().lower().removeprefix("its ")) if w.strip()]
    types = sorted({t for w in words for t in v.event_types(sender, w)})
    hours = v.duration(amount, unit) / 3600
    if not 0 < hours <= 168:
        raise v.bad_value(f"batch files every {amount} {unit}: expected between a minute and a week")
    returns_world.set("channels.batch", {**(returns_world.get("channels.batch") or {}), "events": types, "every_hours": hours})


@step("given", "{share:Share} of the {system:System}'s batch files are {fault}",
      example="Given 30% of the WMS's batch files are cut short")
def batch_fault(returns_world: WorldUnderTest, share: str, system: str, fault: str) -> None:
    """Faults of the files themselves: `cut short` (no trailer: the layer must refuse the file
    whole) or `exported twice` (a second file with the same rows). After the step that says the
    facts go in batch files."""
    v.system(system)
    setting = {"cut short": "truncated_rate", "exported twice": "duplicate_file_rate"}.get(fault.strip())
    if setting is None:
        raise v.bad_value(f"batch files {fault!r}: expected 'cut short' or 'exported twice'")
    if returns_world.get("channels.batch") is None:
        raise v.bad_value("say first which facts go in batch files (Given the WMS exports its receipts ... in batch files every 6 hours)")
    returns_world.set(f"channels.batch.{setting}", v.share(share))


def _broker_listening(address: tuple[str, int] = ("127.0.0.1", 5672)) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(address) == 0
