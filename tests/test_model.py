"""The model keeps its promises: deterministic, statistically what the scenario says, and
reactive to the integration layer (nothing moves that the integration layer did not enable)."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
from collections import Counter
from datetime import datetime

import orjson
import pytest

from simulators.domain import ReturnReason
from simulators.model.demand import DAY, WEEKLY, arrival_times, expected_count
from simulators.scenario import Scenario
from simulators.world import World

QUICK = {"name": "quick", "volumes": {"days": 2, "returns_per_day": 120}}


def _simulate(tmp_path, name: str, *args: str, hashseed: str) -> bytes:
    scenario = tmp_path / "quick.yaml"
    scenario.write_text("name: quick\nvolumes: {days: 2, returns_per_day: 120}\n")
    out = tmp_path / f"{name}.jsonl"
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "simulate", str(scenario), "--out", str(out), *args],
                          capture_output=True, text=True, env=env, timeout=120)
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
    for _ in range(20_000):
        [units] = world.model._grade(rng, Counter({item: 1}), {item: ReturnReason.SIZE_FIT})
        conditions[units.condition] += 1
        dispositions[(units.condition, units.disposition)] += 1
    for condition, share in w.condition_mix.items():
        assert conditions[condition] / 20_000 == pytest.approx(share, abs=0.015)
        for disposition, given in w.disposition_by_condition[condition].items():
            assert dispositions[(condition, disposition)] / max(1, conditions[condition]) == pytest.approx(given, abs=0.05)


def _trace(world_args: dict, **run) -> tuple[World, list[dict]]:
    import io

    sink = io.BytesIO()
    world = World(Scenario.model_validate(world_args), trace_sink=sink)
    world.run_virtual(**run)
    return world, [orjson.loads(line) for line in sink.getvalue().splitlines()]


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
    closed = [e for e in world.expectations.values() if e.outcome == "closed"]
    assert len(closed) > 50
    for exp in closed:
        assert exp.eligible and exp.inspected and exp.refund_cents is not None
    rejected = [e for e in world.expectations.values() if e.outcome == "rejected"]
    assert rejected and all(not e.eligible for e in rejected)
    assert {r["kind"] for r in trace} >= {"requested", "in-transit", "delivered", "received", "inspected", "closed", "event"}


def test_without_an_integration_layer_every_return_stalls_awaiting_approval():
    world, trace = _trace(QUICK, stand_in=False)
    outcomes = Counter(e.outcome for e in world.expectations.values())
    assert outcomes == {"stalled:awaiting-approval": world.model.requested}
    assert not [r for r in trace if r["kind"] in ("in-transit", "received")]  # no parcel moved


def test_simulate_refuses_a_bad_scenario_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nvolumes: {days: -1}\n")
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "simulate", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "volumes.days" in done.stderr and "greater than 0" in done.stderr and "Traceback" not in done.stderr


def test_order_to_return_age_peaks_near_twenty_days_and_late_requests_are_late():
    world, _ = _trace({**QUICK, "volumes": {"days": 4, "returns_per_day": 150}})
    window = world.master.policy.window_days
    ages = {}
    for exp in world.expectations.values():
        delivered = world.master.orders[exp.order_id].delivered_at
        ages[exp.return_id] = (world.scenario.epoch.timestamp() + exp.requested_at - delivered.timestamp()) / DAY
    on_time = [ages[e.return_id] for e in world.expectations.values() if e.ineligible_reason != "outside-window"]
    late = [ages[e.return_id] for e in world.expectations.values() if e.ineligible_reason == "outside-window"]
    assert late and all(age > window for age in late)
    assert all(0 < age < window for age in on_time)
    # Triangular(0.5, 29.5, mode 20): median about 17 days.
    assert 14 <= statistics.median(on_time) <= 20
