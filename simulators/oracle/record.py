"""Everything the oracle reads about a run, as plain JSON: what should have happened (the model's
expectations), what the fakes hold (their state and journals), which faults were injected and
how every delivery went. The oracle reads it as tables (:mod:`simulators.oracle.tables`), which
is also how a run is saved for ``returns-harness reconcile``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# What the checks and the report read of a journal entry. Bodies and responses stay with the
# fakes (``/__admin/journal``): they were half of a saved run and nothing here reads them.
JOURNAL_FIELDS = ("seq", "at", "wall", "method", "path", "status", "duration_ms", "principal", "correlation_id", "idempotency_key",
                  "fault", "fault_kind", "replayed", "lost", "latency_ms", "retry_after_s")


def _lean(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in JOURNAL_FIELDS if entry.get(k) is not None}


@dataclass
class RunRecord:
    scenario: dict[str, Any]
    expected: dict[str, dict[str, Any]]  # return id -> the model's Expectation, as a dict
    state: dict[str, dict[str, Any]]  # system -> its store's snapshot
    journals: dict[str, list[dict[str, Any]]]  # system -> every request it answered (JOURNAL_FIELDS)
    faults: list[dict[str, Any]] = field(default_factory=list)  # kind, event_id, event_type, correlation_id
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # every delivery attempt
    summary: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    # Each malformed message a queue handed the layer: event_id, correlation_id, event_type,
    # dead_lettered (its dead-letter queue held it after the run), queue_found.
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    # Each record of each batch file the WMS exported: file, dropped_at_sim, truncated, copy_of,
    # ended_in (where the layer left the file: archive, rejected, outbound, gone), event_id,
    # event_type, correlation_id.
    batch_records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_world(cls, world) -> RunRecord:
        """Read a live world after its settle phase (it must have kept its expectations)."""
        deliverer = world.deliverer
        return cls(
            scenario=world.scenario.model_dump(mode="json"),
            expected={rid: exp.as_record() for rid, exp in world.expectations.items()},
            state={name: app.state.system.store.snapshot() for name, app in world.apps.items()},
            # A request cut off mid-body is no request (the fakes acted on nothing): not the layer's call.
            journals={name: [_lean(entry) for entry in app.state.system.journal.iter_all() if not entry.get("aborted")]
                      for name, app in world.apps.items()},
            faults=[asdict(f) for f in world.fault_plan.log],
            deliveries=[a.as_dict() for a in deliverer.journal] if deliverer else [],
            summary=world.summary(),
            timeline=list(world.timeline),
            dead_letters=world.dead_letter_rows(),
            batch_records=list(world.batch_records),
        )
