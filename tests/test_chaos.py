"""`chaos` exercises what its verdict claims, by construction: every (write, API fault) pair, every
(event type, delivery fault) pair and every customer behaviour in every run, and three kills of
the layer. Seeds 1-5 in virtual mode; seeds 1-2 live, as a user runs them (`returns-harness run chaos
--seed N`): the reference passes and the coverage view has no zero; a layer that acknowledges
before it stores fails.
"""

from __future__ import annotations

import pytest

from simulators.faults import EVENT_SWEEP, FaultPlan, sweep_rules
from simulators.oracle.coverage import BEHAVIOURS, EVENT_FAULTS, EVENT_TYPES, gaps
from simulators.scenario import Sweep, load
from simulators.steps import API_FAULTS, STEPS, applies
from simulators.world import World
from tests.early_runs import verdict_of

SEEDS = (1, 2, 3, 4, 5)
LIVE_SEEDS = SEEDS[:2]  # side by side on 2 cores, with the defect's run: the virtual runs carry the other seeds


def test_the_sweep_puts_every_fault_kind_on_every_step_it_can_meet():
    rules = sweep_rules(Sweep())
    aimed = {(r.system, r.method, r.path, r.kind.value) for r in rules}
    for name, steps in STEPS.items():
        for step in steps:
            for kind in API_FAULTS:
                assert ((step.system, step.method, step.path, kind) in aimed) == applies(name, kind, step.system), (name, kind)
    # The first round fires on a step's calls 1..7, one kind each: nothing lands on the same call.
    for step in {(r.system, r.method, r.path) for r in rules}:
        offsets = [r.offset for r in rules if (r.system, r.method, r.path) == step]
        assert sorted(offsets) == list(range(1, len(offsets) + 1))


def test_the_event_sweep_gives_the_first_facts_of_each_type_every_delivery_fault():
    plan = FaultPlan(load("chaos"))
    for event_type in ("return.created", "tracking.updated"):
        seen = set()
        for n in range(len(EVENT_SWEEP) + 1):
            plan.deliveries(f"evt_{n}", event_type, "RET-000001", f"fact-{n}")
            seen |= set(plan.last)
        expected = set().union(*EVENT_SWEEP) | ({"missing-scan"} if event_type == "tracking.updated" else set())
        assert seen == expected, event_type


@pytest.mark.parametrize("seed", SEEDS)
def test_every_behaviour_and_delivery_fault_happens_in_chaos(seed):
    """The model's side, in virtual mode (a stand-in plays the layer): what does not depend on
    the layer's calls. The live runs below check the rest."""
    world = World(load("chaos").model_copy(update={"seed": seed}), lean=False)  # lean worlds keep no fault log
    world.run_virtual()
    happened = {(f.event_type, f.kind) for f in world.fault_plan.log}
    for event_type in EVENT_TYPES:
        for kind in EVENT_FAULTS:
            if kind != "missing-scan" or event_type == "tracking.updated":
                assert (event_type, kind) in happened, (event_type, kind)
    summary = world.summary()
    counted = {"other-site": "misrouted", "cancelled before approval": "cancelled_early", "partial receipt": "partial_receipts"}
    assert set(BEHAVIOURS) - set(counted) <= set(summary["by_outcome"])
    assert all(summary[key] > 0 for key in counted.values())


# Seeds 1-2 against the reference, and seed 1 against a layer that acknowledges before it stores.
LIVE_RUNS = [(seed, ()) for seed in LIVE_SEEDS] + [(1, ("--defect=ack-before-store",))]


def start_live_runs(early) -> None:
    """Start the live runs as a user runs them, side by side (tests/conftest.py starts them
    beside light tests, well before the tests below judge them)."""
    for seed, options in LIVE_RUNS:
        name = _name(seed, options)
        early.start(name, ["run", "chaos", "--seed", str(seed), "--report-dir", name, *options], group="chaos", at_once=len(LIVE_RUNS))


def _name(seed: int, options: tuple[str, ...]) -> str:
    return f"chaos-seed{seed}" + "".join(o.replace("--defect=", "-") for o in options)


@pytest.fixture(scope="module")
def chaos_runs(early_runs):
    start_live_runs(early_runs)  # already started, unless this module runs on its own
    return {(seed, options): verdict_of(early_runs.result(_name(seed, options)), early_runs.root / _name(seed, options))
            for seed, options in LIVE_RUNS}


@pytest.mark.parametrize("seed", LIVE_SEEDS)
def test_the_reference_passes_chaos_with_every_cell_exercised(chaos_runs, seed):
    verdict = chaos_runs[(seed, ())]
    failed = {c["name"]: [f"{v['return_id']}: {v['kind']}, {v['message']}" for v in c["violations"][:5]] or c["counts"]
              for c in verdict["checks"] if c["valid"] is False}
    assert failed == {}, verdict["summary"]["by_outcome"]  # what failed, and on which returns, for a CI log
    assert verdict["ok"] and "stopped" not in verdict
    assert gaps(verdict["coverage"]) == []
    assert verdict["coverage"]["nemesis"]["kills"] == 3
    assert all(kill["down_wall_s"] < 10 for kill in verdict["summary"]["kills"])


def test_a_layer_that_acknowledges_before_storing_loses_returns_to_the_kills(chaos_runs):
    verdict = chaos_runs[(1, ("--defect=ack-before-store",))]
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["every-return-ends"]["valid"] is False
    assert checks["every-return-ends"]["counts"].get("lost", 0) > 0
    assert verdict["coverage"]["nemesis"]["kills"] == 3
    # The aimed kill struck just after it acknowledged an inspection: what that inspection owed
    # (a refund, a replacement, stock, a claim) is lost, and the return never closes.
    (aimed,) = [k["after"] for k in verdict["summary"]["kills"] if "after" in k]
    assert aimed["event_type"] == "inspection.completed"

    def lost(name: str) -> set[str]:
        return {v["return_id"] for v in checks[name]["violations"] if v["kind"] == "lost" and checks[name]["valid"] is False}
    assert aimed["return_id"] in lost("every-return-ends")
    owed = ("one-credit-memo-per-refund", "one-replacement-per-exchange", "stock-matches-dispositions", "supplier-claims-match")
    assert any(aimed["return_id"] in lost(name) for name in owed), {name: checks[name]["counts"] for name in owed}
