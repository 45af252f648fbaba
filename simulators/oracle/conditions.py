"""The conditions a run's checks were decided under, and what they do to a verdict.

A FAIL must be the layer's doing. Three conditions can make a check's evidence say less than it
seems, and each turns such a FAIL into UNKNOWN with the reason, never into a PASS:

- the run was **stopped** early (the layer died, or stopped answering): "lost" cannot be told
  from "not yet";
- the layer **went silent** for a while and came back: deliveries the harness gave up on then
  would have been retried for days by a real sender (the retry schedule is compressed);
- the **harness fell behind** (:mod:`simulators.selfwatch`): a timing verdict its own lateness
  could explain;
- the **machine was busy**: acknowledgements too slow only in the seconds when tasks waited for
  a CPU (a layer beside CPU hogs, or beside the harness on a small machine), and fast enough in
  the others.

Beside them, what the run asked of the layer (its load) and which clock timed it.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb

from simulators.oracle.checks import CLOCKS, FINE
from simulators.oracle.observed import BAD_DELIVERY
from simulators.selfwatch import advice, distortion

NEUTRAL = (*FINE, "samples", "over", "missing")
BAD = "(" + ", ".join(f"'{kind}'" for kind in BAD_DELIVERY) + ")"
BUSY_PERCENT = 25.0  # a wall second in which some task waited for a CPU this much of the time is busy
SILENCE_MIN_S = 2.0  # unanswered deliveries spanning less than this are a hiccup, not a silence


def _undecidable(check: dict[str, Any], reason: str) -> None:
    check["valid"] = None
    check["reason"] = f"undecidable: {reason}"


def cut_short(checks: list[dict[str, Any]], stopped: dict[str, Any]) -> None:
    """A check that failed on nothing but "lost" (or an SLA) in a stopped run cannot decide;
    duplicates and wrong amounts written before the stop still fail."""
    for c in checks:
        kinds = {k for k, n in c["counts"].items() if n and k not in NEUTRAL}
        if c["valid"] is False and (kinds <= {"lost"} or c["kind"] == "sla"):
            _undecidable(c, f"the run was stopped at {stopped['at']} ({stopped['reason']})")


def silences(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Spans of wall time in which the layer answered no delivery: consecutive unanswered
    attempts (refused, timed out), with the returns whose deliveries the harness gave up then
    (only those a correct layer would have taken: a forged or malformed copy given up is no loss)."""
    rows = con.execute(f"""
        WITH d AS (SELECT *, sum(CASE WHEN status IS NULL THEN 0 ELSE 1 END) OVER (ORDER BY sent_wall, n ROWS UNBOUNDED PRECEDING) AS run
                   FROM deliveries WHERE sent_wall IS NOT NULL AND coalesce(fault, '') != 'truncated')
        SELECT min(sent_wall), max(sent_wall + coalesce(round_trip_ms, 0) / 1000), count(*), arg_max(error, sent_wall),
               list(DISTINCT correlation_id ORDER BY correlation_id) FILTER (final = 'gave up' AND coalesce(fault, '') NOT IN {BAD})
        FROM d WHERE status IS NULL GROUP BY run HAVING max(sent_wall + coalesce(round_trip_ms, 0) / 1000) - min(sent_wall) >= {SILENCE_MIN_S}
        ORDER BY 1""").fetchall()
    return [{"from_wall": start, "until_wall": end, "seconds": round(end - start, 1), "unanswered": n, "error": error,
             "given_up": given_up or []} for start, end, n, error, given_up in rows]


def went_silent(checks: list[dict[str, Any]], spans: list[dict[str, Any]], started_wall: float | None) -> None:
    """A failure whose every listed return lost a delivery to a silence is the compressed retry
    schedule's as much as the layer's: undecidable, with when."""
    given_up = {rid for span in spans for rid in span["given_up"]}
    if not given_up:
        return
    origin = started_wall or spans[0]["from_wall"]
    when = "; ".join(f"{s['from_wall'] - origin:.1f}-{s['until_wall'] - origin:.1f} s into the run ({s['unanswered']} unanswered, "
                     f"{s['error']})" for s in spans if s["given_up"])
    for c in checks:
        returns = {v["return_id"] for v in c["violations"]}
        if c["valid"] is False and c["kind"] == "invariant" and returns and returns <= given_up and c["violations_found"] == len(returns):
            _undecidable(c, f"the layer stopped answering {when}, and the harness gave up on these returns' deliveries then "
                            "(a real sender retries for days)")


def behind(checks: list[dict[str, Any]], harness: dict[str, Any] | None, clock: str, time_scale: float) -> bool:
    """A timing FAIL the harness's own lateness could explain is UNKNOWN (True if there was one)."""
    distorted = False
    for c in checks:
        sla = c.get("sla")
        if c["valid"] is not False or not sla or sla["observed"] is None:
            continue
        bound = distortion(harness, sla, sla.get("clock", clock), time_scale)
        if sla["observed"] - sla["threshold"] <= bound:
            _undecidable(c, f"p{sla['percentile']:g} {sla['observed']:g} {sla['unit']} is over the limit by no more than the "
                            f"harness's own lateness could add ({bound:.3g} {sla['unit']}); {advice(harness)}")
            distorted = True
    return distorted


def quiet_acks(con: duckdb.DuckDBPyConnection, harness: dict[str, Any] | None) -> dict[str, Any] | None:
    """The acknowledgement latencies answered in the run's quiet seconds (CPU pressure under
    BUSY_PERCENT), and how many seconds were busy. None without PSI."""
    pressure = (harness or {}).get("cpu_pressure")
    if not pressure:
        return None
    quiet = [int(t) for t, percent in pressure if percent < BUSY_PERCENT]
    values = [v for (v,) in con.execute(
        "SELECT latency_ms FROM deliveries WHERE status IS NOT NULL AND latency_ms IS NOT NULL "
        "AND list_contains(?, floor(sent_wall - ?)::INTEGER)", [quiet, harness["started_wall"]]).fetchall()]
    return {"latencies": values, "busy_seconds": len(pressure) - len(quiet), "seconds": len(pressure),
            "peak_percent": max(percent for _, percent in pressure)}


def busy(checks: list[dict[str, Any]], quiet: dict[str, Any] | None) -> None:
    """Acknowledgements too slow only while the machine was busy are the machine's as much as
    the layer's: UNKNOWN, unless the quiet seconds fail the SLA on their own. They do when they
    alone hold more answers over the limit than the percentile allows the whole run (for a p99,
    1% of all answers): however fast the busy seconds' answers might have been, the percentile
    is over the limit, so a busy machine cannot have caused it."""
    ack = next((c for c in checks if c["name"] == "acknowledgement-latency"), None)
    if quiet is None or ack is None or ack["valid"] is not False or not quiet["busy_seconds"]:
        return
    sla = ack["sla"]
    over = sum(v > sla["threshold"] for v in quiet["latencies"])
    allowed = math.floor((1 - sla["percentile"] / 100) * sla["samples"])
    if over > allowed:
        return  # the layer's, busy machine or not
    busy = (f"some task on this machine waited for a CPU at least {BUSY_PERCENT:g}% of the time in {quiet['busy_seconds']} of the "
            f"run's {quiet['seconds']} wall seconds (up to {quiet['peak_percent']:g}%)")
    _undecidable(ack, f"{busy}; the quiet seconds' {len(quiet['latencies'])} answers have {over} over the limit, which "
                      f"p{sla['percentile']:g} allows up to {allowed} of the run's {sla['samples']}: the slow ones could be the "
                      "machine's; run on a quieter machine (fewer jobs beside it) to judge acknowledgement latency")


def load(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
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


def with_acks(con: duckdb.DuckDBPyConnection, harness: dict[str, Any] | None) -> dict[str, Any] | None:
    """The harness's lateness per wall second, with the slowest acknowledgement of that second."""
    if not harness:
        return harness
    acks = dict(con.execute("SELECT floor(sent_wall - ?)::INTEGER AS t, max(latency_ms) FROM deliveries "
                            "WHERE sent_wall IS NOT NULL AND latency_ms IS NOT NULL GROUP BY t", [harness["started_wall"]]).fetchall())
    seconds = sorted({int(r[0]) for r in harness["series"]} | set(acks))
    lags = {int(r[0]): r[1:] for r in harness["series"]}
    series = [[t, *lags.get(t, [0.0, 0.0]), round(acks[t], 1) if t in acks else None] for t in seconds]
    return {**harness, "series": series}


def time_semantics(scenario: dict[str, Any], clock: str) -> dict[str, Any]:
    """How this run was timed, for the verdict and its reports: the clock the SLAs used and why."""
    scale = scenario["time_scale"]
    return {"clock": clock, "time_scale": scale, "sentence": CLOCKS[clock], "one_wall_second": f"{scale / 3600:g} business hours"}
