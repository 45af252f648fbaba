"""The fault plan injects each kind of fault at its configured rate, and records every one
with the return it touched (virtual mode: decided and traced, nothing delivered)."""

from __future__ import annotations

import io
from collections import Counter

import orjson
import pytest

from simulators.scenario import Scenario
from simulators.world import World

RATES = {
    "duplicate_rate": 0.10, "semantic_duplicate_rate": 0.05, "reorder_rate": 0.06, "delay_rate": 0.05,
    "missing_scan_rate": 0.20, "malformed_rate": 0.04, "forged_rate": 0.04, "clock_skew_rate": 0.04,
    "rotation_rate": 0.05,
}


@pytest.fixture(scope="module")
def run():
    sink = io.BytesIO()
    world = World(Scenario.model_validate({"name": "faulty", "volumes": {"days": 3, "returns_per_day": 150},
                                           "faults": {"events": RATES}}), trace_sink=sink)
    world.run_virtual()
    return world, [orjson.loads(line) for line in sink.getvalue().splitlines()]


def _within(count: int, trials: int, rate: float) -> bool:
    mean = trials * rate
    return abs(count - mean) <= 4 * (trials * rate * (1 - rate)) ** 0.5 + 1


def test_each_event_fault_appears_at_its_rate(run):
    world, _ = run
    injected = world.fault_plan.injected
    scans = world.events["tracking.updated"]
    events = sum(world.events.values())
    delivered = events - injected["missing-scan"]  # a missing scan is never sent, so nothing else can hit it
    assert _within(injected["missing-scan"], scans, RATES["missing_scan_rate"])
    assert _within(injected["duplicate"], delivered, RATES["duplicate_rate"])
    assert _within(injected["semantic-duplicate"], delivered, RATES["semantic_duplicate_rate"])
    assert _within(injected["reordered"], delivered, RATES["reorder_rate"])
    assert _within(injected["delayed"], delivered, (1 - RATES["reorder_rate"]) * RATES["delay_rate"])
    assert _within(injected["malformed"], delivered, RATES["malformed_rate"])
    assert _within(injected["forged"], delivered, (1 - RATES["malformed_rate"]) * RATES["forged_rate"])
    skew = (1 - RATES["malformed_rate"]) * (1 - RATES["forged_rate"]) * RATES["clock_skew_rate"]
    assert _within(injected["clock-skew"], delivered, skew)
    not_forged = 1 - (1 - RATES["malformed_rate"]) * RATES["forged_rate"]
    assert _within(injected["rotated-secret"], delivered, not_forged * RATES["rotation_rate"])


def test_every_injected_fault_is_recorded_with_its_return(run):
    world, trace = run
    faults = [r for r in trace if r["kind"] == "fault"]
    assert len(faults) == sum(world.fault_plan.injected.values())
    returns = {r["return_id"] for r in trace if r["kind"] == "expected"}  # streamed as each return ended
    assert len(returns) == world.model.requested
    assert all(r["correlation_id"] in returns for r in faults)
    events = {r["id"] for r in trace if r["kind"] == "event"}
    assert all(r["event_id"] in events for r in faults)


def test_a_lean_virtual_run_counts_faults_without_keeping_a_log(run):
    world, _ = run
    assert world.lean and not world.fault_plan.log  # the trace has every one (above)
    assert sum(world.fault_plan.injected.values()) > 100


def test_no_faults_configured_means_none_injected():
    world = World(Scenario.model_validate({"name": "clean", "volumes": {"days": 1, "returns_per_day": 80}}))
    world.run_virtual()
    assert sum(world.events.values()) > 100
    assert not world.fault_plan.injected


def test_live_faults_reach_the_integration_layer_and_api_faults_heal():
    from tests.integration_double import IntegrationDouble, run_live
    from tests.test_live_world import SCENARIO

    double = IntegrationDouble()
    world = World(Scenario.model_validate({
        **SCENARIO, "name": "live-faults",
        "faults": {
            "events": {"duplicate_rate": 0.2, "malformed_rate": 0.1, "forged_rate": 0.1, "rotation_rate": 0.2},
            "api": [{"system": "carrier", "kind": "error", "method": "POST", "path": "/labels", "status": 503, "first_n": 2}],
        },
    }), live=True, stall_after_wall_s=0)  # the double answers at once
    run_live(world, double)
    injected = world.fault_plan.injected
    assert injected["duplicate"] and injected["malformed"] and injected["forged"]
    # Rotated deliveries carry two signatures and pass verification with the current secret.
    rotated = {a.event_id for a in world.deliverer.journal if a.fault == "rotated-secret"}
    assert rotated and rotated <= {e["id"] for e in double.received}
    assert len(world.fault_plan.log) == sum(injected.values())
    # Forged deliveries fail the double's signature check, on every retry of them.
    forged = {a.event_id for a in world.deliverer.journal if a.fault == "forged"}
    assert len(forged) == injected["forged"] and double.bad_signatures >= len(forged)
    assert double.malformed >= injected["malformed"]
    # Same-id duplicates arrive twice (or more: the first delivery of a return.created is refused).
    seen: dict[str, int] = {}
    for event in double.received:
        seen[event["id"]] = seen.get(event["id"], 0) + 1
    duplicated = {a.event_id for a in world.deliverer.journal if a.fault == "duplicate"}
    clean_originals = {a.event_id for a in world.deliverer.journal if a.fault is None}
    both_readable = duplicated & clean_originals
    assert both_readable and all(seen[i] >= 2 for i in both_readable)
    # The carrier refused two label purchases, then the faults healed for the settle phase.
    assert world.api_faults_fired["carrier"] == 2
    assert not world.apps["carrier"].state.system.hooks.rules
    assert world.open_returns == 0


def test_faults_for_one_event_type_replace_the_general_ones_for_it():
    world = World(Scenario.model_validate({"name": "typed", "volumes": {"days": 1, "returns_per_day": 60}, "faults": {"events": {
        "duplicate_rate": 0.0, "forged_rate": 0.5,
        "by_event_type": {"inspection.completed": {"duplicate_rate": 1.0}}}}}))
    world.run_virtual()
    injected = world.fault_plan.injected
    assert injected["duplicate"] == world.events["inspection.completed"] > 10  # every inspection, and nothing else
    assert injected["forged"] > 0  # the other types keep the general faults


def test_faults_for_one_event_type_hit_only_that_type():
    world = World(Scenario.model_validate({"name": "typed", "volumes": {"days": 1, "returns_per_day": 60},
                                           "faults": {"events": {"by_event_type": {"receipt.completed": {"reorder_rate": 1.0}}}}}),
                  lean=False)
    world.run_virtual()
    kinds = Counter((f.event_type, f.kind) for f in world.fault_plan.log)
    assert kinds == Counter({("receipt.completed", "reordered"): world.events["receipt.completed"]})
