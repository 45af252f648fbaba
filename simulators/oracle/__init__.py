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

from simulators.oracle import observed, tables
from simulators.oracle.checks import CHECKS, CLOCKS, Check, Result
from simulators.oracle.record import RunRecord
from simulators.selfwatch import advice, distortion, is_behind

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


def _cut_short(checks: list[dict[str, Any]], stopped: dict[str, Any]) -> None:
    """A run stopped early (the layer died or went silent) cannot tell "lost" from "not yet":
    a check that failed on nothing else cannot decide. Duplicates and wrong amounts still stand."""
    for c in checks:
        kinds = {k for k, n in c["counts"].items() if n and k not in ("ok", "excused", "samples", "over", "missing")}
        if c["valid"] is False and (kinds <= {"lost"} or c["kind"] == "sla"):
            c["valid"] = None
            c["reason"] = f"undecidable: the run was stopped at {stopped['at']} ({stopped['reason']})"


def _load(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What the run asked of the layer: delivery attempts, their peak per wall second, and the
    most in flight at once (sent, not yet answered)."""
    sent = "FROM deliveries WHERE sent_wall IS NOT NULL AND round_trip_ms IS NOT NULL"
    attempts, peak, seconds = con.execute(f"""
        SELECT coalesce(sum(n), 0), coalesce(max(n), 0), count(*) FROM (SELECT floor(sent_wall) AS s, count(*) AS n {sent} GROUP BY s)""").fetchone()
    (in_flight,) = con.execute(f"""
        WITH edges AS (SELECT sent_wall AS t, 1 AS d {sent} UNION ALL SELECT sent_wall + round_trip_ms / 1000, -1 {sent})
        SELECT coalesce(max(n), 0) FROM (SELECT sum(d) OVER (ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS n FROM edges)""").fetchone()
    return {"deliveries": int(attempts), "peak_per_second": int(peak), "mean_per_second": round(attempts / seconds, 1) if seconds else 0,
            "peak_in_flight": int(in_flight)}


def _with_acks(con: duckdb.DuckDBPyConnection, harness: dict[str, Any] | None) -> dict[str, Any] | None:
    """The harness's lateness per wall second, with the slowest acknowledgement of that second."""
    if not harness:
        return harness
    acks = dict(con.execute("SELECT floor(sent_wall - ?)::INTEGER AS t, max(latency_ms) FROM deliveries "
                            "WHERE sent_wall IS NOT NULL AND latency_ms IS NOT NULL GROUP BY t", [harness["started_wall"]]).fetchall())
    seconds = sorted({int(r[0]) for r in harness["series"]} | set(acks))
    lags = {int(r[0]): r[1:] for r in harness["series"]}
    series = [[t, *lags.get(t, [0.0, 0.0]), round(acks[t], 1) if t in acks else None] for t in seconds]
    return {**harness, "series": series}


def _behind(checks: list[dict[str, Any]], harness: dict[str, Any] | None, clock: str, time_scale: float) -> bool:
    """A timing FAIL the harness's own lateness could explain is UNKNOWN (True if there was one):
    a FAIL must be the layer's doing, never a busy machine's."""
    distorted = False
    for c in checks:
        sla = c.get("sla")
        if c["valid"] is not False or not sla or sla["observed"] is None:
            continue
        bound = distortion(harness, sla, sla.get("clock", clock), time_scale)
        if sla["observed"] - sla["threshold"] <= bound:
            c["valid"] = None
            c["reason"] = (f"undecidable: p{sla['percentile']:g} {sla['observed']:g} {sla['unit']} is over the limit by no more than the "
                           f"harness's own lateness could add ({bound:.3g} {sla['unit']}); {advice(harness)}")
            distorted = True
    return distorted


def time_semantics(scenario: dict[str, Any], clock: str) -> dict[str, Any]:
    """How this run was timed, for the verdict and its reports: the clock the SLAs used and why."""
    scale = scenario["time_scale"]
    return {"clock": clock, "time_scale": scale, "sentence": CLOCKS[clock],
            "one_wall_second": f"{scale / 3600:g} business hours"}


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
        harness = _with_acks(con, summary.get("harness"))
        load = _load(con)
    finally:
        con.close()
    for c in checks:
        for v in c["violations"]:
            documents = v.pop("documents")
            v["evidence"] = {**found[v["return_id"]], "documents": documents}
    stopped = summary.get("stopped")
    if stopped:
        _cut_short(checks, stopped)
    distorted = _behind(checks, harness, clock, scenario["time_scale"])
    return {
        "schema": SCHEMA,
        # Nothing failed, and something was verified: a run with no returns proves nothing.
        "ok": not stopped and all(c["valid"] is not False for c in checks) and any(c["valid"] is True for c in checks),
        **({"stopped": stopped} if stopped else {}),
        **({"harness": {**harness, "behind": distorted or is_behind(harness), "advice": advice(harness)}} if harness else {}),
        "scenario": {"name": scenario["name"], "seed": scenario["seed"], "time_scale": scenario["time_scale"],
                     "days": scenario["volumes"]["days"]},
        "sut": sut,
        "time": time_semantics(scenario, clock),
        "load": load,
        "wall_seconds": wall_seconds,
        "checks": checks,
        "summary": summary,
        "timeline": small["timeline"],
    }
