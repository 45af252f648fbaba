"""The fault plan: what goes wrong, where and when, decided from the scenario's seed.

Two kinds of fault, as production has them:
- on the events delivered to the integration layer: duplicates (same id), semantic duplicates
  (same fact, new id), reordering, delays, missing carrier scans, malformed payloads, forged
  signatures, clock skew, and secret rotation (two signatures; the delivery must be accepted). :meth:`FaultPlan.deliveries` turns one fact into the deliveries
  that happen to it;
- on the fakes' APIs: the scenario's fault rules, installed on the fakes' hooks for the run and
  healed before the settle phase.
Every injected fault is recorded with the return it touched, so a report can say "this
duplicate credit memo followed this duplicated inspection event": the world traces each one
(:attr:`FaultPlan.last` after each call), and a live run also keeps them in :attr:`FaultPlan.log`.
A lean virtual run keeps only the counts, since the trace already has every fault.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass

from simulators.delivery import DeliveryOptions
from simulators.fakekit.hooks import FaultRuleSpec
from simulators.scenario import Scenario

SKEW_S = 600  # a signature timestamp ten minutes off: outside the 5-minute tolerance
_RATES = ("duplicate_rate", "semantic_duplicate_rate", "reorder_rate", "delay_rate", "missing_scan_rate",
          "malformed_rate", "forged_rate", "clock_skew_rate", "rotation_rate")


@dataclass(frozen=True)
class Injected:
    kind: str
    event_id: str
    event_type: str
    correlation_id: str


class FaultPlan:
    def __init__(self, scenario: Scenario, *, keep_log: bool = True) -> None:
        self.faults = scenario.faults.events
        self.seed = scenario.seed
        self.rng = random.Random(f"{scenario.seed}:faults")
        self.injected: Counter[str] = Counter()
        self.keep_log = keep_log
        self.log: list[Injected] = []
        self.last: list[str] = []  # the kinds injected by the last call of deliveries()
        self.by_type = dict(self.faults.by_event_type)  # event type -> the faults it gets instead
        # With every rate at zero nothing can be injected: skip the draws (they decide nothing).
        self.idle = not any(getattr(f, name) for f in (self.faults, *self.by_type.values()) for name in _RATES)

    def _record(self, kind: str, event_id: str, event_type: str, correlation_id: str) -> None:
        self.injected[kind] += 1
        self.last.append(kind)
        if self.keep_log:
            self.log.append(Injected(kind, event_id, event_type, correlation_id))

    def deliveries(self, event_id: str, event_type: str, correlation_id: str, fact: str | None = None) -> list[tuple[str, DeliveryOptions]]:
        """The deliveries one fact becomes, as (label, options); label "semantic" needs a new id.

        Draws happen in a fixed order for every event, so one fault's rate does not shift which
        events another fault hits. With ``fact`` (a name of the fact that does not depend on
        when it happened), the draws come from the seed and that name alone: in live mode the
        order of events follows the integration layer's timing, and the same seed must still
        hit the same facts. An event type with faults of its own (``by_event_type``) gets
        those instead of the general ones.
        """
        self.last = []
        if self.idle:
            return [("original", DeliveryOptions())]
        f = self.by_type.get(event_type, self.faults)
        rng = random.Random(f"{self.seed}:faults:{fact}") if fact is not None else self.rng
        draws = [rng.random() for _ in range(9)]
        delay = rng.expovariate(1 / f.delay_s)
        if event_type == "tracking.updated" and draws[0] < f.missing_scan_rate:
            self._record("missing-scan", event_id, event_type, correlation_id)
            return []
        first = DeliveryOptions()
        if draws[1] < f.reorder_rate:
            first = DeliveryOptions(delay_s=f.reorder_window_s, fault="reordered")
        elif draws[2] < f.delay_rate:
            first = DeliveryOptions(delay_s=delay, fault="delayed")
        if draws[3] < f.malformed_rate:
            first = DeliveryOptions(delay_s=first.delay_s, malformed=True, fault="malformed")
        elif draws[4] < f.forged_rate:
            first = DeliveryOptions(delay_s=first.delay_s, wrong_secret=True, fault="forged")
        elif draws[5] < f.clock_skew_rate:
            first = DeliveryOptions(delay_s=first.delay_s, timestamp_skew_s=-SKEW_S, fault="clock-skew")
        if first.fault:
            self._record(first.fault, event_id, event_type, correlation_id)
        if draws[8] < f.rotation_rate and not first.wrong_secret:
            first = dataclasses.replace(first, rotated=True, fault=first.fault or "rotated-secret")
            self._record("rotated-secret", event_id, event_type, correlation_id)
        out = [("original", first)]
        if draws[6] < f.duplicate_rate:
            out.append(("duplicate", DeliveryOptions(delay_s=first.delay_s + 1.0, fault="duplicate")))
            self._record("duplicate", event_id, event_type, correlation_id)
        if draws[7] < f.semantic_duplicate_rate:
            out.append(("semantic", DeliveryOptions(delay_s=first.delay_s + 60.0, fault="semantic-duplicate")))
            self._record("semantic-duplicate", event_id, event_type, correlation_id)
        return out


def install_api_faults(scenario: Scenario, apps: dict) -> list[tuple[str, str]]:
    """Put the scenario's API fault rules on the fakes; returns (system, rule id) pairs."""
    installed = []
    for fault in scenario.faults.api:
        spec = FaultRuleSpec.model_validate(fault.model_dump(exclude={"system"}))
        rule = apps[fault.system].state.system.hooks.add(spec)
        installed.append((fault.system, rule.id))
    return installed


def heal_api_faults(apps: dict) -> dict[str, int]:
    """Remove every fault rule (the settle phase begins); returns how often each system's fired."""
    fired = {}
    for name, app in apps.items():
        hooks = app.state.system.hooks
        fired[name] = sum(rule.fired for rule in hooks.rules.values())
        hooks.clear()
    return fired
