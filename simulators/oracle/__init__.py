"""The oracle: reconcile what should have happened to every return with what the fakes hold.

``reconcile(record)`` runs every check of :mod:`simulators.oracle.checks` and composes their
results into one verdict (a JSON-able dict, schema ``returns-harness/verdict/1``). A checker
that raises is reported as unknown with its error, never as a crash of the run.
"""

from __future__ import annotations

import traceback
from typing import Any

from simulators.oracle.checks import CHECKS, Check, Result
from simulators.oracle.observed import Observed
from simulators.oracle.record import RunRecord

SCHEMA = "returns-harness/verdict/1"

__all__ = ["CHECKS", "SCHEMA", "RunRecord", "reconcile"]


def _run(check: Check, record: RunRecord, seen: Observed) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": check.name, "kind": check.kind, "title": check.title, "meaning": check.meaning, "error": None}
    try:
        result = check.run(record, seen)
    except Exception:  # noqa: BLE001 (a broken checker is reported, the others still run)
        result = Result(None)
        entry["error"] = traceback.format_exc()
    entry.update(valid=result.valid, counts=dict(result.counts), violations=result.violations)
    if check.kind == "sla":
        entry["sla"] = result.sla
    return entry


def reconcile(record: RunRecord, *, sut: dict[str, Any] | None = None, wall_seconds: float | None = None) -> dict[str, Any]:
    seen = Observed(record)
    checks = [_run(check, record, seen) for check in CHECKS]
    scenario = record.scenario
    return {
        "schema": SCHEMA,
        # Nothing failed, and something was verified: a run with no returns proves nothing.
        "ok": all(c["valid"] is not False for c in checks) and any(c["valid"] is True for c in checks),
        "scenario": {"name": scenario["name"], "seed": scenario["seed"], "time_scale": scenario["time_scale"],
                     "days": scenario["volumes"]["days"]},
        "sut": sut or record.summary.get("sut") or {"kind": "external", "url": None, "defects": []},
        "wall_seconds": wall_seconds,
        "checks": checks,
        "summary": record.summary,
        "timeline": record.timeline,
    }
