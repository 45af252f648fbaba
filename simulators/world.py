"""A world: master data, the four fakes, the SimPy model and its clock, assembled from a scenario.

Virtual mode runs the model as fast as the CPU allows, with the in-process stand-in playing the
integration layer: for traces, expectations and volume studies. (Live mode, against a real
integration layer over HTTP, builds on the same assembly.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import IO

import simpy

from simulators.model.demand import DAY
from simulators.model.expected import Expectation
from simulators.model.lifecycle import ReturnsModel
from simulators.model.standin import InlineIntegration
from simulators.model.trace import Trace
from simulators.scenario import Scenario
from simulators.seed import MasterData, SeedConfig, generate
from simulators.serving import create_apps
from simulators.simtime import SimClock

# Where a return can end; anything else is still on its way.
TERMINAL = {"closed", "rejected", "cancelled", "never-shipped", "returned-to-sender"}
SETTLE_LIMIT_DAYS = 30  # a settle that has not finished by then reports what is still open
MONITOR_S = 3600.0


class World:
    def __init__(self, scenario: Scenario, *, trace_sink: IO[bytes] | None = None) -> None:
        self.scenario = scenario
        self.env = simpy.Environment()
        self.clock = SimClock(self.env, scenario.epoch, scenario.time_scale)
        self.master: MasterData = generate(SeedConfig(seed=scenario.seed, epoch=scenario.epoch, **scenario.seed_data.model_dump()))
        self.apps = create_apps(self.master, self.clock)
        self.stores = {name: app.state.system.store for name, app in self.apps.items()}
        self.trace = Trace(scenario.epoch, trace_sink)
        self.expectations: dict[str, Expectation] = {}
        self.model = ReturnsModel(self.env, scenario, self.stores, self.trace, self._expect)
        self.events: Counter[str] = Counter()
        self.peak_backlog = (0, 0.0)  # (returns waiting for inspection, when)
        for store in (self.stores["returns_portal"], self.stores["carrier"], self.stores["wms"]):
            store.listeners.append(self._announced)

    def _expect(self, expectation: Expectation) -> None:
        self.expectations[expectation.return_id] = expectation

    def _announced(self, event_type: str, data: dict) -> None:
        # What live mode will deliver to the integration layer as webhooks.
        self.events[event_type] += 1
        ref = data.get("id") if event_type.startswith("return.") else data.get("rma_id")
        self.trace.emit(self.env.now, "event", type=event_type, ref=ref)

    def _monitor(self):
        while True:
            backlog = sum(len(r.queue) + r.count for r in self.model.inspecting.values())
            if backlog > self.peak_backlog[0]:
                self.peak_backlog = (backlog, self.env.now)
            yield self.env.timeout(MONITOR_S)

    @property
    def open_returns(self) -> int:
        return sum(n for stage, n in self.model.stages.items() if stage not in TERMINAL and not stage.startswith("stalled"))

    def run_virtual(self, progress: Callable[[World], None] | None = None, *, stand_in: bool = True, slice_s: float = 6 * 3600) -> None:
        """Run the season, then settle until every return ended (or the settle limit passed).

        Without the stand-in nobody plays the integration layer: every return stalls where it
        waits for one, which is what the model promises.
        """
        if stand_in:
            InlineIntegration(self.stores, self.clock)
        self.model.start()
        self.env.process(self._monitor())
        limit = self.scenario.volumes.days * DAY + SETTLE_LIMIT_DAYS * DAY
        while self.env.now < limit:
            self.env.run(until=min(limit, self.env.now + slice_s))
            if progress:
                progress(self)
            if self.model.demand_done and self.open_returns == 0:
                break

    def summary(self) -> dict:
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "simulated_days": round(self.env.now / DAY, 2),
            "returns": self.model.requested,
            "by_outcome": dict(sorted((k, v) for k, v in self.model.stages.items() if v)),
            "events": dict(sorted(self.events.items())),
            "peak_inspection_backlog": {"returns": self.peak_backlog[0], "at_day": round(self.peak_backlog[1] / DAY, 2)},
        }
