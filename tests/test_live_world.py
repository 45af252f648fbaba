"""Live mode end to end over real sockets: the world serves the fakes, steps the model in scaled
real time and delivers every fact, signed, to a test double of an integration layer, which
approves returns over HTTP. Deliveries it refuses are retried; every attempt is journaled."""

from __future__ import annotations

import pytest

from simulators.scenario import Scenario
from simulators.world import World
from tests.integration_double import IntegrationDouble, run_live

SCENARIO = {
    "name": "live-test",
    "time_scale": 40_000,  # a simulated day in about 2 wall seconds
    "volumes": {"days": 0.5, "returns_per_day": 60},
    "customer": {"cancel_rate": 0, "never_ship_rate": 0, "late_request_rate": 0, "ship_delay_days_median": 0.3},
    "carrier": {"transit_days_median": 0.4, "exception_rate": 0, "return_to_sender_rate": 0},
}


@pytest.fixture(scope="module")
def live_run():
    double = IntegrationDouble()
    world = World(Scenario.model_validate(SCENARIO), live=True, stall_after_wall_s=0)  # the double answers at once
    run_live(world, double)
    return world, double


def test_every_return_travels_once_the_double_approved_it(live_run):
    world, _ = live_run
    outcomes = {e.outcome for e in world.expectations.values()}
    assert world.model.requested >= 15
    # The double never refunds, so returns get as far as inspection and wait there.
    assert outcomes == {"stalled:awaiting-refund"}


def test_events_arrive_signed_with_their_correlation_id(live_run):
    world, double = live_run
    assert double.bad_signatures == 0
    types = {e["type"] for e in double.received}
    assert types == {"return.created", "tracking.updated", "receipt.completed", "inspection.completed"}
    returns = {r for r in world.expectations}
    assert {e["correlation_id"] for e in double.received} == returns


def test_refused_deliveries_are_retried_and_every_attempt_is_journaled(live_run):
    world, _ = live_run
    created = [a for a in world.deliverer.journal if a.event_type == "return.created"]
    by_event: dict[str, list] = {}
    for attempt in created:
        by_event.setdefault(attempt.event_id, []).append(attempt)
    assert len(by_event) == world.model.requested
    for attempts in by_event.values():
        assert [a.status for a in attempts] == [500, 204]
        assert [a.attempt for a in attempts] == [1, 2]
    stats = world.deliverer.stats()
    assert stats["pending"] == 0 and stats["failed"] == 0
    assert world.deliverer.latency_percentiles()["corrected"]["count"] == len(world.deliverer.journal)


def test_the_fakes_journaled_the_doubles_calls_with_correlation_ids(live_run):
    world, _ = live_run
    patches = world.apps["returns_portal"].state.system.journal.find()
    approved = [e for e in patches if e["method"] == "PATCH" and e["status"] == 200]
    assert len(approved) == world.model.requested
    assert all(e["correlation_id"] == e["path"].rsplit("/", 1)[1] for e in approved)
