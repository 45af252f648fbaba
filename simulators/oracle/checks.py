"""The invariants and SLAs, each a small named checker (after Jepsen's): it reads the expected
outcomes and the observed history (the tables of :mod:`simulators.oracle.tables`, through the
per-return table :mod:`simulators.oracle.observed` builds) and returns a :class:`Result` — valid
true, false or unknown (the history cannot decide), counts, and the violations.

Outcomes are classified as a set checker does: ``ok``; ``lost`` (expected, never happened);
``duplicated`` (happened more than once); ``unexpected`` (happened, never expected); ``wrong``
(happened with the wrong content); ``late`` (happened outside its SLA or before its time).

An invariant is one SQL query with a row per thing it judged: ``return_id``, ``outcome`` (one of
the above, ``excused`` or ``ok``; NULL when there was nothing to judge) and what its message needs.
Counts are exact; the first :data:`LISTED` violations are listed, and get evidence afterwards.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from simulators.oracle import observed

LISTED = 1000  # violations listed per check, with evidence; counts are always complete
# Outcomes that are no violation: ``excused`` (no layer could have acted), ``caught-up`` (the
# layer did it after the compressed world had stopped waiting; its SLA judges how late).
FINE = ("ok", "excused", "caught-up")
DISTRIBUTION = 10_000  # SLA samples kept in the verdict, for the report's plots


@dataclass
class Result:
    valid: bool | None
    counts: Counter = field(default_factory=Counter)
    violations: list[dict[str, Any]] = field(default_factory=list)  # the first LISTED of them
    sla: dict[str, Any] | None = None
    found: int = 0  # violations in all


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # invariant | sla
    title: str
    meaning: str
    run: Callable[[duckdb.DuckDBPyConnection, dict[str, Any]], Result]
    idle: str = "nothing in this run gave it anything to judge"  # why it could not decide, then


CHECKS: list[Check] = []


def check(name: str, title: str, meaning: str, kind: str = "invariant", idle: str = Check.idle):
    def register(fn: Callable[[duckdb.DuckDBPyConnection, dict[str, Any]], Result]):
        CHECKS.append(Check(name, kind, title, meaning, fn, idle))
        return fn
    return register


def judged(con: duckdb.DuckDBPyConnection, sql: str, message: Callable[[dict[str, Any]], str], kinds: tuple[str, ...] = ()) -> Result:
    """Count the outcomes of ``sql`` and list its first violations (valid unless one was found;
    unknown when nothing at all was judged). A violation names the return's documents of these
    ``kinds`` (see :func:`observed.documents`), or those of the query's own ``documents`` column."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE judged AS SELECT * FROM ({sql}) WHERE outcome IS NOT NULL")
    counts = Counter(dict(con.execute("SELECT outcome, count(*) FROM judged GROUP BY outcome ORDER BY outcome").fetchall()))
    cursor = con.execute(f"SELECT * FROM judged WHERE outcome NOT IN {FINE} ORDER BY return_id LIMIT {LISTED}")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values)) for values in cursor.fetchall()]
    con.execute("DROP TABLE judged")
    named = observed.documents(con, [r["return_id"] for r in rows if r["return_id"]], kinds)
    violations = []
    for row in rows:
        rid = row["return_id"] or "?"
        row.setdefault("documents", named.get(rid, []))
        violations.append({"return_id": rid, "correlation_id": rid, "kind": row["outcome"], "message": message(row),
                           "documents": row["documents"]})
    found = sum(n for kind, n in counts.items() if kind not in FINE)
    return Result(None if not counts else not found, counts, violations, found=found)


def ids(values: list[str] | None) -> str:
    return ", ".join(values or ())


def units(text: str | None) -> str:
    return text or "nothing"


# -- invariants ----------------------------------------------------------------------------------


@check("one-rma-per-approved-return", "Exactly one RMA per eligible return, none for ineligible ones",
       "A second RMA authorizes a second refund; an RMA for an ineligible return lets a customer return what policy refuses.")
def one_rma(con, scenario) -> Result:
    def message(r):
        return {"unexpected": f"{r['ineligible_reason']}, yet RMA {ids(r['documents'])}",
                "duplicated": f"{r['rmas']} RMAs: {ids(r['documents'])}",
                "lost": f"no RMA (the return ended {r['expected_outcome']})"}[r["outcome"]]
    return judged(con, """
        SELECT return_id, rmas, ineligible_reason, outcome AS expected_outcome, CASE
            WHEN NOT eligible THEN CASE WHEN rmas > 0 THEN 'unexpected' ELSE 'ok' END
            WHEN rmas > 1 THEN 'duplicated'
            WHEN rmas = 0 AND outcome != 'cancelled' AND NOT created_excused THEN 'lost'
            ELSE 'ok' END AS outcome
        FROM per_return""", message, kinds=("rma",))


@check("one-credit-memo-per-refund", "Exactly one credit memo per refunded return, with the policy's amount",
       "A missing memo leaves the customer unpaid; a second one or a wrong amount pays out money the policy does not owe.")
def one_memo(con, scenario) -> Result:
    def message(r):
        first = (r["documents"] or ["?"])[0]
        return {"duplicated": f"{r['memos']} credit memos: {ids(r['documents'])}",
                "unexpected": f"credit memo {first} for an exchange",
                "wrong": f"{first} credits {r['memo_amount']} cents; the policy says {r['refund_cents']}",
                "lost": f"no credit memo (the return ended {r['expected_outcome']})"}[r["outcome"]]
    # Owed: the warehouse inspected it, the layer could know, and money (not an exchange) settles it.
    return judged(con, """
        SELECT return_id, memos, memo_amount, refund_cents, outcome AS expected_outcome, CASE
            WHEN memos > 1 THEN 'duplicated'
            WHEN memos > 0 AND resolution = 'exchange' THEN 'unexpected'
            WHEN memos > 0 AND owed_goods AND memo_amount IS DISTINCT FROM refund_cents THEN 'wrong'
            WHEN memos = 0 AND owed_goods AND resolution != 'exchange' THEN 'lost'
            WHEN memos > 0 OR (owed_goods AND resolution != 'exchange') THEN 'ok' END AS outcome
        FROM per_return""", message, kinds=("credit_memo",))


@check("no-refund-before-inspection", "No credit memo before the warehouse inspected the return",
       "Refunding on receipt pays for empty boxes and swapped items.")
def refund_after_inspection(con, scenario) -> Result:
    return judged(con, """
        SELECT d.return_id, [d.id] AS documents, d.id, d.created_at, CASE
            WHEN s.inspection_at IS NULL OR d.created_at < s.inspection_at THEN 'late' ELSE 'ok' END AS outcome
        FROM owned_documents d JOIN document_stats s USING (return_id) WHERE d.kind = 'credit_memo'""",
                  lambda r: f"{r['id']} posted {observed.iso(r['created_at'])}, before any inspection")


def _units_check(kind: str, doc_kind: str, key: str, outcomes: str) -> str:
    """Units moved per key (summed over the return's documents, zeros dropped) against the units
    owed when the inspection is owed; ``outcomes`` classifies a mismatch."""
    return f"""
        WITH got AS (
            SELECT return_id, {key} AS key, sum(quantity) AS units FROM owned_documents WHERE kind = '{doc_kind}'
            GROUP BY ALL HAVING sum(quantity) != 0),
        want AS (
            SELECT u.return_id, u.key, u.units FROM expected_units u JOIN per_return p USING (return_id)
            WHERE u.kind = '{kind}' AND p.owed_goods),
        pairs AS (SELECT return_id, key, g.units AS got, w.units AS want FROM got g FULL JOIN want w USING (return_id, key)),
        per AS (
            SELECT return_id, count(got) AS got_keys, count(want) AS want_keys,
                   count(*) FILTER (coalesce(got, 0) != coalesce(want, 0)) AS mismatches,
                   bool_and(coalesce(got, 0) >= want) FILTER (want IS NOT NULL) AS covers,
                   string_agg(key || ': ' || got, ', ' ORDER BY key) FILTER (got IS NOT NULL) AS got_text,
                   string_agg(key || ': ' || want, ', ' ORDER BY key) FILTER (want IS NOT NULL) AS want_text
            FROM pairs GROUP BY return_id)
        SELECT p.return_id, got_text, want_text, CASE
            WHEN NOT p.owed_goods AND coalesce(got_keys, 0) = 0 THEN NULL
            WHEN coalesce(mismatches, 0) = 0 THEN 'ok'
            {outcomes} END AS outcome
        FROM per_return p LEFT JOIN per USING (return_id)"""


@check("stock-matches-dispositions", "Inventory adjustments per item, site and stock status equal the inspected dispositions",
       "Stock moved twice is phantom stock sold to the next customer; stock never moved is lost to sale.")
def stock(con, scenario) -> Result:
    sql = _units_check("stock", "adjustment", "item_id || '|' || site_id || '|' || stock_status", """
            WHEN coalesce(want_keys, 0) = 0 THEN 'unexpected'
            WHEN covers THEN 'duplicated'
            WHEN coalesce(got_keys, 0) = 0 THEN 'lost' ELSE 'wrong'""")
    return judged(con, sql, lambda r: f"stock moved {units(r['got_text'])}; the inspection says {units(r['want_text'])}",
                  kinds=("adjustment",))


@check("supplier-claims-match", "One supplier claim's units per return-to-vendor line",
       "Units sent back to vendors without a claim are money not recovered; claimed twice is a dispute with the vendor.")
def claims(con, scenario) -> Result:
    sql = _units_check("claim", "claim", "item_id", "WHEN coalesce(got_keys, 0) > 0 THEN 'wrong' ELSE 'lost'")
    return judged(con, sql, lambda r: f"claimed {units(r['got_text'])}; returned to vendor {units(r['want_text'])}", kinds=("claim",))


@check("one-replacement-per-exchange", "Exactly one replacement order per inspected exchange, none otherwise",
       "A missing replacement leaves the customer with nothing; two ship two free items.")
def replacements(con, scenario) -> Result:
    return judged(con, """
        SELECT return_id, replacements, want, CASE
            WHEN NOT owed_goods AND replacements = 0 THEN NULL
            WHEN replacements = want THEN 'ok'
            WHEN replacements < want THEN 'lost'
            WHEN want > 0 THEN 'duplicated' ELSE 'unexpected' END AS outcome
        FROM (SELECT *, CASE WHEN owed_goods AND replacement THEN 1 ELSE 0 END AS want FROM per_return)""",
                  lambda r: f"{r['replacements']} replacement order(s), expected {r['want']}", kinds=("replacement",))


@check("one-asn-and-label-before-arrival", "One label and one expected receipt per RMA, the ASN before the parcel arrived",
       "A parcel with no ASN is a blind receipt someone must research by hand; two labels or ASNs confuse the dock.")
def asn_and_label(con, scenario) -> Result:
    def message(r):
        if r["outcome"] == "duplicated":
            return f"{r['labels']} label(s) and {r['asns']} ASN(s) for {r['rmas']} RMA(s)"
        return "the parcel arrived before its expected receipt"
    return judged(con, """
        SELECT return_id, labels, asns, rmas, CASE
            WHEN rmas = 0 THEN NULL
            WHEN asns > rmas OR labels > rmas THEN 'duplicated'
            WHEN receipts > 0 AND (asns = 0 OR asn_at > receipt_at) THEN 'late'
            ELSE 'ok' END AS outcome
        FROM per_return""", message, kinds=("asn", "label", "receipt"))


@check("no-status-regression", "The portal status of a return never moves backwards",
       "A refunded return shown as in transit again tells the customer their parcel is lost.")
def no_regression(con, scenario) -> Result:
    return judged(con, """
        SELECT return_id, moves_back, CASE WHEN regressions > 0 THEN 'wrong' WHEN changes > 0 THEN 'ok' END AS outcome
        FROM per_return""", lambda r: f"moved back: {r['moves_back']}")


@check("every-return-ends", "Every return reaches the end it should: closed, rejected or cancelled",
       "A stalled return is a customer waiting for a label or a refund; it shows where the integration stopped.")
def terminal(con, scenario) -> Result:
    def message(r):
        if r["stalled"]:
            return f"{r['expected_outcome'].removeprefix('stalled:')} (portal: {r['status']})"
        return f"ineligible ({r['ineligible_reason']}) but {r['status']}, not rejected"
    # Excused: the facts it waited on only ever arrived malformed or forged, so no layer could act
    # (its request, for an approval; its receipt or inspection, for a refund: a forged scan
    # excuses neither).
    # Caught up: the world stopped waiting (its patience is capped in wall seconds, and a busy
    # machine or a long backlog can outlast it) but the layer did finish what it waited for.
    return judged(con, """
        SELECT return_id, status, ineligible_reason, outcome AS expected_outcome, eligible AS stalled, CASE
            WHEN NOT eligible AND coalesce(status, '') NOT IN ('rejected', 'cancelled')
                THEN CASE WHEN created_excused THEN 'excused' ELSE 'lost' END
            WHEN outcome = 'stalled:awaiting-approval' AND (status IN ('rejected', 'cancelled')
                                                            OR status = 'approved' AND rmas > 0 AND labels > 0) THEN 'caught-up'
            WHEN outcome = 'stalled:awaiting-refund' AND status = 'closed' THEN 'caught-up'
            WHEN outcome = 'stalled:awaiting-refund' THEN CASE WHEN goods_excused THEN 'excused' ELSE 'lost' END
            WHEN outcome LIKE 'stalled%' THEN CASE WHEN created_excused THEN 'excused' ELSE 'lost' END
            ELSE 'ok' END AS outcome
        FROM per_return""", message)


@check("portal-shows-the-refund", "The portal shows each refund: marked refunded, with the credit memo's id and amount",
       "A customer refunded in the ERP but not in the portal calls support; one shown another amount disputes it.",
       idle="no credit memo was posted in this run")
def refund_shown(con, scenario) -> Result:
    def message(r):
        if r["outcome"] == "lost":
            return f"credit memo {r['memo_id']} posted, but the portal return was never marked refunded (it is {r['status']})"
        return (f"the portal shows {r['refund_memo_id']} for {r['refund_amount']} cents; "
                f"the credit memo is {r['memo_id']} for {r['memo_amount']} cents")
    return judged(con, """
        SELECT return_id, status, memo_id, memo_amount, refund_memo_id, refund_amount, CASE
            WHEN NOT refunded_shown THEN 'lost'
            WHEN refund_memo_id IS DISTINCT FROM memo_id OR refund_amount IS DISTINCT FROM memo_amount THEN 'wrong'
            ELSE 'ok' END AS outcome
        FROM per_return WHERE memos = 1""", message, kinds=("credit_memo",))


@check("cancelled-stays-cancelled", "A cancelled return stays cancelled: never moved on, refunded or replaced",
       "A cancelled return moved on asks the customer for a parcel they kept; a refund or replacement for it pays for nothing.",
       idle="no return was cancelled in this run")
def cancelled(con, scenario) -> Result:
    def message(r):
        if r["outcome"] == "wrong":
            return f"moved on after the customer cancelled: {r['reopened']}"
        return f"cancelled, yet {r['memos']} credit memo(s) and {r['replacements']} replacement order(s): {ids(r['documents'])}"
    return judged(con, """
        SELECT return_id, reopened, memos, replacements, CASE
            WHEN reopened IS NOT NULL THEN 'wrong'
            WHEN memos > 0 OR replacements > 0 THEN 'unexpected'
            ELSE 'ok' END AS outcome
        FROM per_return WHERE outcome = 'cancelled' OR reopened IS NOT NULL""", message, kinds=("credit_memo", "replacement"))


@check("nothing-for-bad-input", "Malformed, forged or stale deliveries cause no writes",
       "Acting on a forged webhook lets anyone who can reach the endpoint trigger refunds.",
       idle="no delivery in this run was malformed, forged or skewed (with no clean copy)")
def bad_input(con, scenario) -> Result:
    def message(r):
        acted = [f"RMA {ids(r['documents'])}"] if r["acted_on_request"] else []
        acted += ["credit memo or stock adjustments"] if r["acted_on_inspection"] else []
        return f"only refused deliveries of {r['event_types']}, yet {'; '.join(acted)}"
    return judged(con, """
        SELECT return_id, event_types, acted_on_request, acted_on_inspection,
               CASE WHEN acted_on_request OR acted_on_inspection THEN 'unexpected' ELSE 'ok' END AS outcome
        FROM (SELECT x.return_id, x.event_types,
                     x.created_bad AND coalesce(r.rmas, 0) > 0 AS acted_on_request,
                     x.inspection_bad AND (coalesce(d.memos, 0) > 0 OR coalesce(d.adjustments, 0) > 0) AS acted_on_inspection
              FROM excused x LEFT JOIN rma_stats r USING (return_id) LEFT JOIN document_stats d USING (return_id))""",
                  message, kinds=("rma",))


@check("poison-dead-lettered", "A malformed message from a queue ends in the layer's dead-letter queue",
       "Requeued, a poison message goes round the consumer for ever; dropped, it cannot be looked at or replayed.",
       idle="no malformed message reached the layer through a message queue in this run")
def poison_dead_lettered(con, scenario) -> Result:
    def message(r):
        where = ("the layer's dead-letter queue" if r["queue_found"]
                 else "the layer's dead-letter queue, which does not exist (docs/CONTRACT.md names it)")
        return f"malformed {r['event_type']} message {r['event_id']} is not in {where}: requeued, dropped or still held"
    return judged(con, """
        SELECT correlation_id AS return_id, event_id, event_type, queue_found,
               CASE WHEN dead_lettered THEN 'ok' ELSE 'lost' END AS outcome
        FROM dead_letters""", message)


@check("truncated-file-refused", "A batch file cut short is refused whole: moved to rejected, none of its records acted on",
       "Booked row by row, a truncated file books half a day's receipts; its re-export then books them twice or not at all.",
       idle="no batch file in this run was cut short")
def truncated_file_refused(con, scenario) -> Result:
    def message(r):
        if r["acted_at"] is not None:
            after = f"before a complete file carried it ({r['clean_at']})" if r["clean_at"] else "and no complete file ever carried it"
            return f"{r['event_type']} {r['event_id']} of the cut-short file {r['file']} was acted on at {r['acted_at']}, {after}"
        return f"the cut-short file {r['file']} was left in {r['ended_in']}, not moved to rejected"
    # The layer's first write a record causes: the portal's "received" for a receipt, money or
    # stock for an inspection. Made between the cut file's drop and a complete file's, it came
    # from the cut one.
    return judged(con, """
        WITH clean AS (SELECT event_id, min(dropped_at) AS clean_at FROM batch_records WHERE NOT truncated GROUP BY event_id),
        written AS (
            SELECT c.*, k.clean_at, CASE c.event_type
                WHEN 'receipt.completed' THEN (SELECT min("at") FROM history h WHERE h.return_id = c.correlation_id AND to_status = 'received')
                WHEN 'inspection.completed' THEN (SELECT min(created_at) FROM owned_documents d WHERE d.return_id = c.correlation_id
                                                  AND kind IN ('credit_memo', 'adjustment', 'claim', 'replacement')) END AS first_write
            FROM batch_records c LEFT JOIN clean k USING (event_id) WHERE c.truncated),
        acted AS (SELECT *, CASE WHEN first_write >= dropped_at AND (clean_at IS NULL OR first_write < clean_at)
                                  THEN first_write END AS acted_at FROM written)
        SELECT correlation_id AS return_id, file, event_id, event_type, ended_in, clean_at, acted_at,
               CASE WHEN acted_at IS NOT NULL OR ended_in != 'rejected' THEN 'wrong' ELSE 'ok' END AS outcome
        FROM acted""", message)


@check("retry-after-honoured", "After a 429 or 503 with Retry-After, the same call waits that long",
       "Hammering a throttled ERP gets the integration's client blocked, and every return with it.",
       idle="no call of the layer's was answered 429 or 503 with Retry-After in this run")
def retry_after(con, scenario) -> Result:
    # Each call against the one before it with the same return, method and path, in the order
    # the fake answered them (calls made for no return, a token say, cannot be told apart).
    # Not the principal: a request refused by a fault was refused before authentication.
    return judged(con, """
        SELECT correlation_id AS return_id, system, method, path, started - refused_wall AS waited, retry_after,
               CASE WHEN started < refused_wall + retry_after - 0.05 THEN 'late' ELSE 'ok' END AS outcome
        FROM (SELECT *, wall - coalesce(duration_ms, 0) / 1000 AS started,
                     lag(wall) OVER call AS refused_wall, lag(retry_after_s) OVER call AS retry_after,
                     lag(status) OVER call AS refused_status
              FROM journal WHERE coalesce(correlation_id, '') != ''
              WINDOW call AS (PARTITION BY system, correlation_id, method, path ORDER BY n))
        WHERE retry_after IS NOT NULL AND refused_status IN (429, 503)""",
                  lambda r: f"{r['system']} {r['method']} {r['path']} again after {r['waited']:.2f} s; Retry-After said {r['retry_after']:g} s")


@check("idempotency-keys-on-writes", "Every POST carries an Idempotency-Key (and every call the return's correlation id)",
       "Without a key, a write whose answer was lost is done twice when retried.")
def keys(con, scenario) -> Result:
    calls_by_layer = "FROM journal WHERE path != '/oauth/token' AND principal IS NOT NULL"
    calls, correlated = con.execute(f"SELECT count(*), count(*) FILTER (coalesce(correlation_id, '') != '') {calls_by_layer}").fetchone()
    result = judged(con, f"""
        SELECT correlation_id AS return_id, system, path,
               CASE WHEN coalesce(idempotency_key, '') != '' THEN 'ok' ELSE 'unkeyed' END AS outcome
        {calls_by_layer} AND method = 'POST'""", lambda r: f"{r['system']} POST {r['path']} without Idempotency-Key")
    if calls:
        writes = result.counts["ok"] + result.counts["unkeyed"]
        result.counts["correlated_percent"] = round(100 * correlated / calls)
        result.counts["keyed_percent"] = round(100 * result.counts["ok"] / writes) if writes else 100
    result.valid = None if not calls else not result.counts["unkeyed"]
    return result


# -- SLAs ------------------------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank percentile: exact, no interpolation."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _sla(con, metric: str, p: float, threshold: float, unit: str, sql: str, missing: int = 0, clock: str = "wall") -> Result:
    """``sql`` yields ``value`` (one sample a row) and ``n`` (the order the distribution keeps)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE samples AS {sql}")
    count, over = con.execute("SELECT count(*), count(*) FILTER (value > ?) FROM samples", [threshold]).fetchone()
    sla = {"metric": metric, "percentile": p, "threshold": threshold, "unit": unit, "observed": None, "samples": count, "distribution": [],
           "clock": clock}
    if not count:
        con.execute("DROP TABLE samples")
        return Result(None, Counter(missing=missing), sla=sla)
    rank = max(1, math.ceil(p / 100 * count))  # nearest rank, as percentile() above
    observed = con.execute(f"SELECT value FROM samples ORDER BY value LIMIT 1 OFFSET {rank - 1}").fetchone()[0]
    sla["observed"] = round(observed, 3)
    sla["distribution"] = [round(v, 3) for (v,) in con.execute(f"SELECT value FROM samples ORDER BY n LIMIT {DISTRIBUTION}").fetchall()]
    con.execute("DROP TABLE samples")
    return Result(observed <= threshold, Counter(samples=count, over=over, missing=missing), sla=sla)


# How a business-time SLA is timed (see docs/CONTRACT.md, "Time"). The world runs compressed
# (time_scale business seconds a wall second) while a layer works in wall time, so:
# - the layer's turn starts when the harness first offered it the fact: a delivery the fault plan
#   held back (reordered, delayed) or the harness sent late counts for nobody, since no layer can
#   act on a fact it has not been told;
# - clock "wall" (the default): the turn, from that offer to the write the SLA waits for, counts
#   at face value (its business span divided by the time scale: the wall seconds it took); the
#   world's own delays count in business time;
# - clock "business": a layer that schedules work by the harness's business clock (nightly
#   batches, cut-offs) is judged on business time throughout.
CLOCKS = {"wall": "the layer's own time at face value (wall seconds), the world's delays in business time",
          "business": "business time throughout: the layer schedules its work by the harness's business clock"}
HAPPENED = {"request": "requested_at", "inspection": "inspection_at"}  # when each fact happened


@dataclass(frozen=True)
class Turn:
    """The layer's turn in an interval: the fact happened, was offered to it, and was answered by a write."""

    happened: str
    offered: str
    done: str


def _seconds(start: str, end: str) -> str:
    return f"greatest(0, epoch({end}) - epoch({start}))"


def _turn(fact: str, start: str, done: str) -> Turn:
    """The turn on ``fact`` (request or inspection), kept between ``start`` and ``done``; with no
    offer, the layer had it from when it happened."""
    offered = f"least(greatest(coalesce({fact}_offered_at, {start}), {start}), {done})"
    return Turn(f"least(greatest(coalesce({HAPPENED[fact]}, {offered}), {start}), {offered})", offered, done)


def _timed(ctx: dict[str, Any], start: str, end: str, turns: list[Turn]) -> str:
    """Business seconds from ``start`` to ``end`` as the run's clock counts them (see above)."""
    unoffered = " + ".join(_seconds(t.happened, t.offered) for t in turns)
    if ctx.get("sut_clock", "wall") == "business":
        return f"greatest(0, {_seconds(start, end)} - ({unoffered}))"
    layer = " + ".join(_seconds(t.offered, t.done) for t in turns)
    return f"greatest(0, {_seconds(start, end)} - ({unoffered}) - (1 - 1 / {float(ctx['time_scale'])}) * ({layer}))"


@check("request-to-rma", "Return request to RMA", "Customers wait for their label while no RMA exists.", kind="sla")
def sla_rma(con, scenario) -> Result:
    (missing,) = con.execute("SELECT count(*) FROM per_return WHERE eligible AND NOT (rmas > 0 AND requested_at IS NOT NULL) "
                             "AND outcome != 'cancelled'").fetchone()
    value = _timed(scenario, "requested_at", "rma_at", [_turn("request", "requested_at", "rma_at")])
    return _sla(con, "request_to_rma_hours", 95, scenario["slas"]["request_to_rma_hours_p95"], "hours",
                f"SELECT {value} / 3600 AS value, return_id AS n FROM per_return "
                "WHERE eligible AND rmas > 0 AND requested_at IS NOT NULL", missing, scenario.get("sut_clock", "wall"))


@check("inspection-to-credit", "Inspection to credit memo", "The refund promised after inspection is late.", kind="sla")
def sla_credit(con, scenario) -> Result:
    value = _timed(scenario, "inspection_at", "memo_at", [_turn("inspection", "inspection_at", "memo_at")])
    return _sla(con, "inspection_to_credit_hours", 95, scenario["slas"]["inspection_to_credit_hours_p95"], "hours",
                f"SELECT {value} / 3600 AS value, return_id AS n FROM per_return "
                "WHERE memos > 0 AND inspection_at IS NOT NULL", clock=scenario.get("sut_clock", "wall"))


@check("request-to-closed", "Return request to closed", "The whole return takes longer than customers are promised.", kind="sla")
def sla_closed(con, scenario) -> Result:
    # Two turns of the layer's: the request until the return is approved with a label (what the
    # customer waits for), and the inspection until the return is closed.
    inspected = _turn("inspection", "requested_at", "closed_at")
    approved = f"least(greatest(rma_at, label_at, approved_at), {inspected.happened})"
    value = _timed(scenario, "requested_at", "closed_at", [_turn("request", "requested_at", approved), inspected])
    return _sla(con, "request_to_closed_days", 95, scenario["slas"]["request_to_closed_days_p95"], "days",
                f"SELECT {value} / 86400 AS value, return_id AS n FROM per_return "
                "WHERE closed_at IS NOT NULL AND requested_at IS NOT NULL", clock=scenario.get("sut_clock", "wall"))


@check("acknowledgement-latency", "Webhook acknowledgement latency (from the intended send time)",
       "Slow answers are retried by the sender: duplicates and a growing backlog.", kind="sla")
def sla_ack(con, scenario) -> Result:
    return _sla(con, "ack_latency_ms", 99, scenario["slas"]["ack_latency_ms_p99"], "ms",
                "SELECT latency_ms AS value, n FROM deliveries WHERE status IS NOT NULL AND latency_ms IS NOT NULL", clock="wall")
