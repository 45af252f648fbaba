"""The model keeps its promises: deterministic, statistically what the scenario says, and
reactive to the integration layer (nothing moves that the integration layer did not enable)."""

from __future__ import annotations

import io
import os
import random
import statistics
import subprocess
import sys
from collections import Counter
from datetime import datetime

import orjson
import pytest

from simulators.domain import Category, Condition, Disposition, ReturnReason
from simulators.model.demand import DAY, WEEKLY, arrival_times, expected_count
from simulators.scenario import Scenario, ScenarioError, parse
from simulators.world import World

QUICK = {"name": "quick", "volumes": {"days": 2, "returns_per_day": 120}}


def _simulate(tmp_path, name: str, *args: str, hashseed: str) -> bytes:
    scenario = tmp_path / "quick.yaml"
    scenario.write_text("name: quick\nvolumes: {days: 2, returns_per_day: 120}\n")
    out = tmp_path / f"{name}.jsonl"
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "simulate", str(scenario), "--out", str(out), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def test_same_scenario_and_seed_give_a_byte_identical_trace(tmp_path):
    first = _simulate(tmp_path, "a", hashseed="1")
    assert first == _simulate(tmp_path, "b", hashseed="2")  # and string hashing order plays no part
    assert first != _simulate(tmp_path, "c", "--seed", "9", hashseed="1")
    assert first.count(b'"kind":"requested"') > 100


@pytest.mark.parametrize("profile", ["steady", "post-holiday-peak", "promotion-spike", "recall"])
def test_arrivals_per_day_follow_the_profile(profile):
    epoch = datetime.fromisoformat("2026-12-26T00:00:00+00:00")
    days, rate = 12, 3000
    counts = Counter(int(t // DAY) for t in arrival_times(random.Random(1), returns_per_day=rate, days=days, profile=profile, epoch=epoch))
    for day in range(days):
        mean = expected_count(returns_per_day=rate, start=day * DAY, end=(day + 1) * DAY, profile=profile, epoch=epoch)
        assert abs(counts[day] - mean) <= 4.5 * mean**0.5, (day, counts[day], mean)  # Poisson: sd = sqrt(mean)
    if profile == "post-holiday-peak":  # 26 December runs at about 3x an average day (Returnly)
        assert counts[0] > 2.6 * rate * WEEKLY[epoch.weekday()]


def test_inspection_grades_follow_the_condition_and_disposition_mix():
    world = World(Scenario(name="grades"))
    rng = random.Random(3)
    w = world.scenario.warehouse
    conditions, dispositions = Counter(), Counter()
    item = next(iter(world.master.items))
    category = world.master.items[item].category
    for _ in range(20_000):
        [units] = world.model.grader.grade(rng, Counter({item: 1}), {item: ReturnReason.SIZE_FIT})
        conditions[units.condition] += 1
        dispositions[(units.condition, units.disposition)] += 1
    for condition, share in w.condition_mix.items():
        assert conditions[condition] / 20_000 == pytest.approx(share, abs=0.015)
        for disposition, given in w.disposition_mix(category, condition).items():
            assert dispositions[(condition, disposition)] / max(1, conditions[condition]) == pytest.approx(given, abs=0.05)


def test_dispositions_follow_the_mix_of_each_item_category():
    world = World(Scenario(name="categories"))
    w = world.scenario.warehouse
    rng = random.Random(5)
    n = 12_000
    shares: dict[Category, Counter] = {}
    for category in Category:
        item = next(i.id for i in world.master.items.values() if i.category is category)
        found = Counter()
        for _ in range(n):  # a reason that does not force a condition: the condition mix applies
            [units] = world.model.grader.grade(rng, Counter({item: 1}), {item: ReturnReason.CHANGED_MIND})
            found[units.disposition] += 1
        shares[category] = found
        for disposition in Disposition:
            expected = sum(p * w.disposition_mix(category, c).get(disposition, 0.0) for c, p in w.condition_mix.items())
            assert found[disposition] / n == pytest.approx(expected, abs=0.02), (category, disposition)
    # The defaults say what the categories are known for (docs/MODEL.md).
    rtv, restock, scrap = Disposition.RETURN_TO_VENDOR, Disposition.RESTOCK, Disposition.SCRAP
    assert shares[Category.ELECTRONICS][rtv] > 2 * shares[Category.APPAREL][rtv]
    assert shares[Category.APPAREL][restock] > shares[Category.ELECTRONICS][restock] + 0.2 * n
    assert shares[Category.BEAUTY][scrap] > 1.4 * shares[Category.APPAREL][scrap]


def test_the_default_season_disposes_of_returns_near_optoros_mix():
    _, trace = _trace({"name": "mix", "volumes": {"days": 3, "returns_per_day": 400}})
    units = Counter()
    for r in trace:
        if r["kind"] == "inspected":
            for _, quantity, _, disposition in r["units"]:
                units[disposition] += quantity
    total = sum(units.values())
    assert total > 1500
    # Optoro: about 50% restock and 25% return to vendor (docs/MODEL.md, Warehouse).
    assert 0.45 <= units["restock"] / total <= 0.60
    assert 0.18 <= units["return_to_vendor"] / total <= 0.30


@pytest.mark.parametrize(("setting", "message"), [
    ("{electronics: {restock: -1}}", "warehouse.disposition_by_category.electronics.restock: Input should be greater than or equal to 0"),
    ("{toys: {restock: 2}}", "warehouse.disposition_by_category.toys.[key]"),
    ("{apparel: {restock: 0, refurbish: 0, return_to_vendor: 0}}",
     "disposition_by_category.apparel: its weights leave condition 'new' no disposition"),
])
def test_a_bad_category_adjustment_names_the_setting(setting, message):
    with pytest.raises(ScenarioError) as caught:
        parse(f"name: bad\nwarehouse:\n  disposition_by_category: {setting}\n", "bad.yaml")
    assert message in str(caught.value)


def test_a_category_adjustment_reweights_and_renormalises_the_condition_mix():
    w = Scenario.model_validate({"name": "w", "warehouse": {"disposition_by_category": {"home": {"refurbish": 2}}}}).warehouse
    opened = w.disposition_by_condition[Condition.OPENED]
    mix = w.disposition_mix(Category.HOME, Condition.OPENED)
    total = sum(share * (2 if d is Disposition.REFURBISH else 1) for d, share in opened.items())
    assert mix[Disposition.REFURBISH] == pytest.approx(2 * opened[Disposition.REFURBISH] / total)
    assert sum(mix.values()) == pytest.approx(1)
    assert w.disposition_mix(Category.APPAREL, Condition.OPENED) == pytest.approx(opened)  # not listed: unchanged


def _trace(world_args: dict, **run) -> tuple[World, list[dict]]:
    sink = io.BytesIO()
    world = World(Scenario.model_validate(world_args), trace_sink=sink)
    world.run_virtual(**run)
    return world, [orjson.loads(line) for line in sink.getvalue().splitlines()]


def _expected(trace: list[dict]) -> dict[str, dict]:
    """The expectations a virtual run streamed to its trace, by return id."""
    return {r["return_id"]: r for r in trace if r["kind"] == "expected"}


def test_transit_times_follow_the_carrier_model():
    world, trace = _trace({**QUICK, "volumes": {"days": 4, "returns_per_day": 150}, "carrier": {"exception_rate": 0, "return_to_sender_rate": 0}})
    picked = {r["return_id"]: r["t"] for r in trace if r["kind"] == "in-transit"}
    transit = [r["t"] - picked[r["return_id"]] for r in trace if r["kind"] == "delivered"]
    assert len(transit) > 300
    median_days = statistics.median(transit) / DAY
    assert median_days == pytest.approx(world.scenario.carrier.transit_days_median, rel=0.12)


def test_every_return_ends_and_expectations_match_the_outcome():
    world, trace = _trace(QUICK)
    assert world.open_returns == 0
    expected = _expected(trace)
    assert len(expected) == world.model.requested  # each return's expectation traced once, as it ended
    assert Counter(e["outcome"] for e in expected.values()) == world.summary()["by_outcome"]
    closed = [e for e in expected.values() if e["outcome"] == "closed"]
    assert len(closed) > 50
    for exp in closed:
        assert exp["eligible"] and exp["inspected"] and exp["refund_cents"] is not None
    rejected = [e for e in expected.values() if e["outcome"] == "rejected"]
    assert rejected and all(not e["eligible"] for e in rejected)
    assert {r["kind"] for r in trace} >= {"requested", "in-transit", "delivered", "received", "inspected", "closed", "event"}


def test_a_lean_virtual_run_forgets_ended_returns_and_keeps_their_statistics():
    lean_sink, full_sink = io.BytesIO(), io.BytesIO()
    lean = World(Scenario.model_validate(QUICK), trace_sink=lean_sink)
    lean.run_virtual()
    full = World(Scenario.model_validate(QUICK), trace_sink=full_sink, lean=False, keep_expectations=True)
    full.run_virtual()
    # Forgetting changes nothing the run decides: same trace, same summary.
    assert lean_sink.getvalue() == full_sink.getvalue()
    assert lean.summary() == full.summary()
    assert len(full.expectations) == full.model.requested and not lean.expectations
    assert not lean.fault_plan.log
    stores = lean.stores
    assert not stores["returns_portal"].returns and not stores["carrier"].trackers and not stores["carrier"].labels
    assert not stores["wms"].expected_receipts and not stores["wms"].receipts and not stores["wms"].inspections
    assert not stores["erp"].rmas and not stores["erp"].credit_memos and not stores["erp"].adjustments
    assert full.stores["erp"].credit_memos and full.stores["returns_portal"].returns
    assert lean.stores["erp"].balances == full.stores["erp"].balances  # every stock movement still counted


def test_without_an_integration_layer_every_return_stalls_awaiting_approval():
    world, trace = _trace(QUICK, stand_in=False)
    outcomes = Counter(e["outcome"] for e in _expected(trace).values())
    assert outcomes == {"stalled:awaiting-approval": world.model.requested}
    assert not [r for r in trace if r["kind"] in ("in-transit", "received")]  # no parcel moved


def test_simulate_refuses_a_bad_scenario_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nvolumes: {days: -1}\n")
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "simulate", str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "volumes.days" in done.stderr and "greater than 0" in done.stderr and "Traceback" not in done.stderr


def test_order_to_return_age_peaks_near_twenty_days_and_late_requests_are_late():
    scenario = Scenario.model_validate({**QUICK, "volumes": {"days": 4, "returns_per_day": 150}})
    sink = io.BytesIO()
    world = World(scenario, trace_sink=sink, lean=False)  # keeps the new sales, to know when they were delivered
    world.run_virtual()
    expected = _expected([orjson.loads(line) for line in sink.getvalue().splitlines()]).values()
    window = world.master.policy.window_days
    ages = {}
    for exp in expected:
        delivered = world.master.orders[exp["order_id"]].delivered_at
        ages[exp["return_id"]] = (world.scenario.epoch.timestamp() + exp["requested_at"] - delivered.timestamp()) / DAY
    on_time = [ages[e["return_id"]] for e in expected if e["eligible"]]  # (a late request on hold is rejected for the hold)
    late = [ages[e["return_id"]] for e in expected if e["ineligible_reason"] == "outside-window"]
    assert late and all(age > window for age in late)
    assert all(0 < age < window for age in on_time)
    # Triangular(0.5, 29.5, mode 20): median about 17 days.
    assert 14 <= statistics.median(on_time) <= 20


def test_a_return_the_layer_is_still_working_on_is_not_stalled_until_it_goes_quiet_or_the_cap():
    """Live, the world waits on the layer at least STALL_AFTER_WALL_S, and longer while the layer
    keeps calling the fakes for that return (backing off under throttling is not stalling), up to
    STALL_AT_MOST_WALL_S. Virtual time stands in for the wall here."""
    from simulators.model.lifecycle import STALL_AFTER_S

    def stalled_after(quiet_s: float) -> list[float]:
        world = World(Scenario.model_validate({**QUICK, "volumes": {"days": 0.5, "returns_per_day": 40}}), trace_sink=io.BytesIO())
        model = world.model
        model.stall_after_wall_s, model.stall_at_most_s = 1.0, 10 * DAY
        model.layer_quiet_s = lambda: quiet_s
        sink = world.trace.sink
        world.run_virtual(stand_in=False)
        trace = [orjson.loads(line) for line in sink.getvalue().splitlines()]
        asked = {r["return_id"]: r["t"] for r in trace if r["kind"] == "requested"}
        return [r["t"] - asked[r["return_id"]] for r in trace if r["kind"] == "stalled:awaiting-approval"]

    quiet, busy = stalled_after(5.0), stalled_after(0.0)
    assert quiet and all(STALL_AFTER_S - 1 <= waited < STALL_AFTER_S + DAY for waited in quiet)  # quiet: the usual deadline
    assert busy and all(10 * DAY - 1 <= waited < 11 * DAY for waited in busy)  # still calling: until the cap
