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
from simulators.events import EventType
from simulators.fakekit.hooks import FaultRuleSpec
from simulators.scenario import ApiFault, Scenario, Sweep
from simulators.steps import API_FAULTS, STEPS, applies

SKEW_S = 600  # a signature timestamp ten minutes off: outside the 5-minute tolerance
# The fault kinds a fact can draw, in the order of its draws.
_DRAWN = ("missing-scan", "reordered", "delayed", "malformed", "forged", "clock-skew", "duplicate", "semantic-duplicate",
          "rotated-secret")
# What the sweep does to the first facts of each event type: every delivery fault within six facts,
# each refused delivery followed by a good copy (so no return is left without its fact).
EVENT_SWEEP = tuple(frozenset(c) for c in (
    {"reordered", "duplicate"}, {"delayed", "semantic-duplicate"}, {"malformed", "duplicate"},
    {"forged", "semantic-duplicate"}, {"clock-skew", "duplicate"}, {"rotated-secret"},
))
# Faults of a webhook's signature: a channel without signatures (the broker authenticates its
# publishers) cannot carry them, so facts sent that way never draw them.
SIGNATURE_FAULTS = frozenset({"forged", "clock-skew", "rotated-secret"})
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
        self.unsigned = frozenset(t.value for t in EventType if scenario.channels.carrier_of(t.value) != "webhook")
        # Facts exported in files: a record is not malformed on its own, a file is cut short instead
        # (the batch channel's truncated_rate).
        self.filed = frozenset(t.value for t in EventType if scenario.channels.carrier_of(t.value) == "batch")
        self.sweep = scenario.faults.sweep
        self._swept_facts: Counter[str] = Counter()
        # With every rate at zero nothing can be injected: skip the draws (they decide nothing).
        self.idle = self.sweep is None and not any(getattr(f, name) for f in (self.faults, *self.by_type.values()) for name in _RATES)

    def record(self, kind: str, event_id: str, event_type: str, correlation_id: str) -> None:
        """A fault a channel did to a fact on its own (a batch file cut short or exported twice)."""
        self.injected[kind] += 1
        if self.keep_log:
            self.log.append(Injected(kind, event_id, event_type, correlation_id))

    def _record(self, kind: str, event_id: str, event_type: str, correlation_id: str) -> None:
        self.record(kind, event_id, event_type, correlation_id)
        self.last.append(kind)

    def deliveries(self, event_id: str, event_type: str, correlation_id: str, fact: str | None = None) -> list[tuple[str, DeliveryOptions]]:
        """The deliveries one fact becomes, as (label, options); label "semantic" needs a new id.

        Draws happen in a fixed order for every event, so one fault's rate does not shift which
        events another fault hits. With ``fact`` (a name of the fact that does not depend on
        when it happened), the draws come from the seed and that name alone: in live mode the
        order of events follows the integration layer's timing, and the same seed must still
        hit the same facts. An event type with faults of its own (``by_event_type``) gets
        those instead of the general ones. With a sweep, the first facts of each type (and every
        ``every_n``-th after) get the sweep's faults instead of drawn ones.
        """
        self.last = []
        if self.idle:
            return [("original", DeliveryOptions())]
        f = self.by_type.get(event_type, self.faults)
        rng = random.Random(f"{self.seed}:faults:{fact}") if fact is not None else self.rng
        draws = [rng.random() for _ in range(9)]
        delay = rng.expovariate(1 / f.delay_s)
        kinds = self._swept(event_type)
        if kinds is None:
            kinds = {kind for kind, draw, rate in zip(_DRAWN, draws, (
                f.missing_scan_rate, f.reorder_rate, f.delay_rate, f.malformed_rate, f.forged_rate, f.clock_skew_rate,
                f.duplicate_rate, f.semantic_duplicate_rate, f.rotation_rate)) if draw < rate}
        if event_type in self.unsigned:
            kinds = kinds - SIGNATURE_FAULTS
        if event_type in self.filed:
            kinds = kinds - {"malformed"}
        if event_type == "tracking.updated" and "missing-scan" in kinds:
            self._record("missing-scan", event_id, event_type, correlation_id)
            return []
        first = DeliveryOptions()
        if "reordered" in kinds:
            first = DeliveryOptions(delay_s=f.reorder_window_s, fault="reordered")
        elif "delayed" in kinds:
            first = DeliveryOptions(delay_s=delay, fault="delayed")
        if "malformed" in kinds:
            first = DeliveryOptions(delay_s=first.delay_s, malformed=True, fault="malformed")
        elif "forged" in kinds:
            first = DeliveryOptions(delay_s=first.delay_s, wrong_secret=True, fault="forged")
        elif "clock-skew" in kinds:
            first = DeliveryOptions(delay_s=first.delay_s, timestamp_skew_s=-SKEW_S, fault="clock-skew")
        if first.fault:
            self._record(first.fault, event_id, event_type, correlation_id)
        if "rotated-secret" in kinds and not first.wrong_secret:
            first = dataclasses.replace(first, rotated=True, fault=first.fault or "rotated-secret")
            self._record("rotated-secret", event_id, event_type, correlation_id)
        out = [("original", first)]
        if "duplicate" in kinds:
            out.append(("duplicate", DeliveryOptions(delay_s=first.delay_s + 1.0, fault="duplicate")))
            self._record("duplicate", event_id, event_type, correlation_id)
        if "semantic-duplicate" in kinds:
            out.append(("semantic", DeliveryOptions(delay_s=first.delay_s + 60.0, fault="semantic-duplicate")))
            self._record("semantic-duplicate", event_id, event_type, correlation_id)
        return out

    def _swept(self, event_type: str) -> frozenset[str] | None:
        """The sweep's faults for this fact of ``event_type`` (counted per type), or None: draw them."""
        if self.sweep is None:
            return None
        combos = EVENT_SWEEP + ((frozenset({"missing-scan"}),) if event_type == "tracking.updated" else ())
        n = self._swept_facts[event_type]
        self._swept_facts[event_type] += 1
        if n < len(combos):
            return combos[n]
        if (n - len(combos)) % self.sweep.every_n == 0:
            return combos[(n - len(combos)) // self.sweep.every_n % len(combos)]
        return None


def sweep_rules(sweep: Sweep) -> list[ApiFault]:
    """One rule per (step, fault kind) that can meet: kind i fires on a step's call i+1, then every
    ``every_n`` calls, so every pair happens once a step has made 7 calls, and again all season.
    A refused call's retries are calls of the step too: the first write of each step meets the
    faults one after another, as a write does when a system is having a bad minute.
    """
    rules = []
    for name, steps in STEPS.items():
        for step in steps:
            kinds = [k for k in API_FAULTS if applies(name, k, step.system)]
            for i, kind in enumerate(kinds):
                rules.append(ApiFault(
                    system=step.system, kind=kind, method=step.method, path=step.path, every_n=sweep.every_n, offset=i + 1,
                    retry_after_s=sweep.retry_after_s, latency_ms=sweep.latency_ms, max_concurrent=1, limit=1,
                ))
    return rules


def install_api_faults(scenario: Scenario, apps: dict) -> list[tuple[str, str]]:
    """Put the scenario's API fault rules (and its sweep's) on the fakes; returns (system, rule id) pairs."""
    installed = []
    sweep = sweep_rules(scenario.faults.sweep) if scenario.faults.sweep else []
    for fault in [*scenario.faults.api, *sweep]:
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
