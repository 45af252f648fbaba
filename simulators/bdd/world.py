"""The world as Gherkin steps see it: a synchronous facade over a live run.

Given steps describe a world (a scenario: volumes, behaviour, faults), When steps say what
happens, and the first step that needs an answer runs the whole world live once, through
:func:`simulators.runner.run`: the fakes are served, the integration layer gets every event,
the world settles and the oracle reconciles. pytest-bdd steps cannot be async, and a run is
one blocking call, so the facade needs no thread of its own: it blocks until the verdict.

Two scenarios that describe the same world (same settings after their Given steps, same
integration layer) share one run per pytest session: same scenario and seed, same world.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.bdd.vocabulary import bad_value

# Where every feature starts: one quiet, short day whose customers all ship and are eligible,
# so each fault or rule a feature adds is the only thing going on. A run takes a few seconds.
BASE: dict[str, Any] = {
    "seed": 1,
    "time_scale": 120_000,  # 33 simulated hours per wall second
    "volumes": {"days": 1, "returns_per_day": 30, "max_returns": 12},
    "seed_data": {"on_hold_share": 0},
    "customer": {"cancel_rate": 0, "never_ship_rate": 0, "late_request_rate": 0, "ship_delay_days_median": 0.3},
    "carrier": {"transit_days_median": 0.4, "exception_rate": 0, "return_to_sender_rate": 0},
}
RATE_FIELDS = ("duplicate_rate", "semantic_duplicate_rate", "reorder_rate", "reorder_window_s", "delay_rate", "delay_s",
               "missing_scan_rate", "malformed_rate", "forged_rate", "clock_skew_rate", "rotation_rate")


class WorldUnderTest:
    """One Gherkin scenario's world: settings built up by steps, run once when first asked."""

    def __init__(self, runs: Runs, name: str, base_dir: Path | None = None) -> None:
        self.runs, self.name, self.base_dir = runs, name, base_dir or Path.cwd()
        self.settings: dict[str, Any] = copy.deepcopy(BASE)
        self.event_faults: dict[str | None, dict[str, float]] = {}  # event type (None: every type) -> rates
        self.outcome: Outcome | None = None

    # -- building the world (Given, When) -------------------------------------------------------

    def _open(self) -> None:
        if self.outcome is not None:
            raise bad_value("the world has already run: put Given and When steps before the first Then")

    def start_from(self, name_or_path: str) -> None:
        """A shipped scenario or a YAML file (relative to the feature file) instead of the base."""
        from simulators.scenario import ScenarioError, load

        self._open()
        path = self.base_dir / name_or_path
        try:
            spec = load(path if path.suffix and path.exists() else name_or_path)
        except ScenarioError as e:
            raise bad_value(str(e)) from None
        self.settings = spec.model_dump(mode="json", exclude={"name", "description"})
        self.event_faults = {}

    def set(self, dotted: str, value: Any) -> None:
        self._open()
        node = self.settings
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.settings
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def fault_events(self, event_types: list[str] | None, **rates: float) -> None:
        """Faults on these event types only (None: on every event)."""
        self._open()
        for event_type in event_types or [None]:
            self.event_faults.setdefault(event_type, {}).update(rates)

    def fault_api(self, system: str, **rule: Any) -> None:
        self._open()
        self.settings.setdefault("faults", {}).setdefault("api", []).append({"system": system, **rule})

    def scenario(self):
        """The scenario these settings make, validated; a bad value fails naming the setting."""
        from pydantic import ValidationError

        from simulators.scenario import Scenario

        settings = copy.deepcopy(self.settings)
        events = settings.setdefault("faults", {}).setdefault("events", {})
        events.update(self.event_faults.get(None, {}))
        general = {k: v for k, v in events.items() if k in RATE_FIELDS}
        for event_type, rates in self.event_faults.items():
            if event_type is not None:
                events.setdefault("by_event_type", {})[event_type] = {**general, **events.get("by_event_type", {}).get(event_type, {}),
                                                                       **rates}
        try:
            return Scenario.model_validate({"name": self.name, **settings})
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
            raise bad_value(f"the steps make an invalid scenario: {problems}") from None

    # -- running it (When the world settles, or the first Then) --------------------------------

    def settle(self) -> Outcome:
        if self.outcome is None:
            self.outcome = self.runs.run(self.scenario())
        return self.outcome


@dataclass
class Outcome:
    """A settled run: the oracle's verdict, and where the run is saved."""

    verdict: dict[str, Any]
    run_dir: Path

    def check(self, name: str) -> dict[str, Any]:
        for check in self.verdict["checks"]:
            if check["name"] == name:
                return check
        known = ", ".join(c["name"] for c in self.verdict["checks"])
        raise bad_value(f"no check named {name!r}; the oracle has: {known}")

    def query(self, sql: str, parameters: list[Any] | None = None) -> list[tuple]:
        """Rows of ``sql`` over the saved run's tables (expected outcomes and what the fakes hold)."""
        from simulators.oracle import query

        return query(self.run_dir / "run", sql, parameters)

    def where(self) -> str:
        return (f"the run is saved in {self.run_dir}; `returns-harness reconcile {self.run_dir} --report-dir DIR` "
                f"writes its HTML report")


@dataclass
class Runs:
    """Live runs for one pytest session, against one integration layer; one run per distinct world."""

    root: Path
    sut_url: str | None = None
    defects: tuple[str, ...] = ()
    base_port: int | None = None
    done: dict[str, Outcome] = field(default_factory=dict)

    def run(self, scenario) -> Outcome:
        from simulators.runner import RunOptions, run
        from simulators.sut import Unreachable

        # The name is the Gherkin scenario's; the world is everything else.
        world = scenario.model_dump(mode="json", exclude={"name", "description"})
        key = hashlib.sha256(json.dumps(world, sort_keys=True).encode()).hexdigest()[:16]
        if key not in self.done:
            run_dir = self.root / f"world-{key}"
            log = print if self.sut_url else (lambda _message: None)  # a user's layer needs the fakes' env file
            try:
                verdict = run(RunOptions(scenario=scenario, report_dir=run_dir, sut_url=self.sut_url, defects=self.defects,
                                         base_port=self.base_port, log=log))
            except Unreachable as e:
                raise bad_value(f"--rh-sut-url: {e}") from None
            self.done[key] = Outcome(verdict, run_dir)
        return self.done[key]
