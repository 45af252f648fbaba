"""The oracle: reconcile what should have happened to every return with what the fakes hold.

``reconcile(run)`` runs every check of :mod:`simulators.oracle.checks` over the run's tables
(:mod:`simulators.oracle.tables`) and composes their results into one verdict (a JSON-able dict,
schema ``returns-harness/verdict/1``). ``run`` is a live :class:`RunRecord` or a saved run
directory. A checker that raises is reported as unknown with its error, never as a crash of the run.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import duckdb

from simulators.oracle import conditions, coverage, observed, tables
from simulators.oracle.checks import CHECKS, Check, Result
from simulators.oracle.record import RunRecord
from simulators.selfwatch import advice, is_behind

SCHEMA = "returns-harness/verdict/1"

__all__ = ["CHECKS", "SCHEMA", "RunRecord", "query", "reconcile", "save"]


def _run(check: Check, con: duckdb.DuckDBPyConnection, scenario: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": check.name, "kind": check.kind, "title": check.title, "meaning": check.meaning, "error": None,
                             "reason": None}
    try:
        result = check.run(con, scenario)
    except Exception:  # noqa: BLE001 (a broken checker is reported, the others still run)
        result = Result(None)
        entry["error"] = traceback.format_exc()
        entry["reason"] = "the checker itself failed (a bug of the harness): see its error"
    # Counts are complete; the violations listed (with evidence) stop at checks.LISTED.
    entry.update(valid=result.valid, counts=dict(result.counts), violations=result.violations, violations_found=result.found)
    if result.valid is None and entry["reason"] is None:
        entry["reason"] = check.idle
    if check.kind == "sla":
        entry["sla"] = result.sla
    return entry


def save(run: RunRecord, directory: Path) -> Path:
    """Save a live run where ``returns-harness reconcile`` can read it again."""
    con = tables.from_record(run)
    try:
        return tables.save(con, {name: getattr(run, name) for name in tables.SMALL}, directory)
    finally:
        con.close()


def query(directory: Path, sql: str, parameters: list[Any] | None = None) -> list[tuple]:
    """Rows of ``sql`` over a saved run's tables (see :mod:`simulators.oracle.tables`)."""
    con, _ = tables.open_saved(directory)
    try:
        return con.execute(sql, parameters or []).fetchall()
    finally:
        con.close()


def reconcile(run: RunRecord | Path, *, sut: dict[str, Any] | None = None, wall_seconds: float | None = None) -> dict[str, Any]:
    if isinstance(run, RunRecord):
        con, small = tables.from_record(run), {name: getattr(run, name) for name in tables.SMALL}
    else:
        con, small = tables.open_saved(Path(run))
    scenario, summary = small["scenario"], small["summary"]
    sut = sut or summary.get("sut") or {"kind": "external", "url": None, "defects": []}
    clock = sut.get("clock", "wall")
    try:
        observed.index(con)
        checks = [_run(check, con, {**scenario, "sut_clock": clock}) for check in CHECKS]
        # The evidence of every listed violation, read once for all checks.
        found = observed.evidence(con, {v["return_id"] for c in checks for v in c["violations"]})
        harness = conditions.with_acks(con, summary.get("harness"))
        load, silences = conditions.load(con), conditions.silences(con)
        quiet = conditions.quiet_acks(con, harness)
        cells = coverage.coverage(con, summary)
    finally:
        con.close()
    for c in checks:
        c["exposure"] = coverage.exposure(c["name"], cells)
        for v in c["violations"]:
            documents = v.pop("documents")
            v["evidence"] = {**found[v["return_id"]], "documents": documents}
    stopped = summary.get("stopped")
    if stopped:
        conditions.cut_short(checks, stopped)
    conditions.went_silent(checks, silences, (harness or {}).get("started_wall"))
    distorted = conditions.behind(checks, harness, clock, scenario["time_scale"])
    conditions.busy(checks, quiet)
    return {
        "schema": SCHEMA,
        # Nothing failed, and something was verified: a run with no returns proves nothing.
        "ok": not stopped and all(c["valid"] is not False for c in checks) and any(c["valid"] is True for c in checks),
        **({"stopped": stopped} if stopped else {}),
        **({"harness": {**harness, "behind": distorted or is_behind(harness), "advice": advice(harness)}} if harness else {}),
        "scenario": {"name": scenario["name"], "seed": scenario["seed"], "time_scale": scenario["time_scale"],
                     "days": scenario["volumes"]["days"]},
        "sut": sut,
        "time": conditions.time_semantics(scenario, clock),
        "load": load,
        **({"layer_silences": silences} if silences else {}),
        "coverage": cells,
        "wall_seconds": wall_seconds,
        "checks": checks,
        "summary": summary,
        "timeline": small["timeline"],
    }
