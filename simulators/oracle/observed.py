"""What the fakes hold after a run, indexed by return: the oracle's view of the observed history.

:func:`index` adds, beside a run's tables, one row per return for each source (its RMAs, its
documents, its portal history, the deliveries it had to refuse) and ``per_return``: every expected
return with all of them. :func:`evidence` reads what a person needs to see why a return failed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import duckdb

BAD_DELIVERY = ("malformed", "forged", "clock-skew")  # faults a receiver must refuse
CLEAN_COPY = ("duplicate", "semantic-duplicate")  # faults that also deliver the fact intact
NOT_OFFERED = (*BAD_DELIVERY, "truncated")  # attempts that gave the layer nothing it could act on (a cut file's records)
EVIDENCE_ROWS = 30  # deliveries and writes shown per return


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


INDEX = f"""
-- RMA -> return: the return the RMA names; else the portal's record of the RMA it was approved
-- with (a layer that leaves external_reference empty is still tied back to its return).
CREATE TEMP TABLE owner AS
    SELECT rma_id, arg_min(return_id, rank) AS return_id FROM (
        SELECT id AS rma_id, return_id, n AS rank FROM rmas WHERE return_id IS NOT NULL
        UNION ALL
        SELECT rma_id, id, n + (SELECT count(*) FROM rmas) FROM returns WHERE rma_id IS NOT NULL)
    GROUP BY rma_id;

CREATE TEMP VIEW owned_documents AS SELECT o.return_id, d.* FROM documents d JOIN owner o USING (rma_id);

CREATE TEMP TABLE rma_stats AS
    SELECT return_id, count(*) AS rmas, arg_min(created_at, n) AS rma_at
    FROM rmas WHERE return_id IS NOT NULL GROUP BY return_id;

CREATE TEMP TABLE document_stats AS
    SELECT return_id,
        count(*) FILTER (kind = 'credit_memo') AS memos,
        arg_min(amount, n) FILTER (kind = 'credit_memo') AS memo_amount,
        arg_min(id, n) FILTER (kind = 'credit_memo') AS memo_id,
        arg_min(created_at, n) FILTER (kind = 'credit_memo') AS memo_at,
        count(*) FILTER (kind = 'adjustment') AS adjustments,
        count(*) FILTER (kind = 'replacement') AS replacements,
        count(*) FILTER (kind = 'asn') AS asns,
        arg_min(created_at, n) FILTER (kind = 'asn') AS asn_at,
        count(*) FILTER (kind = 'label') AS labels,
        min(created_at) FILTER (kind = 'label') AS label_at,
        count(*) FILTER (kind = 'receipt') AS receipts,
        min(created_at) FILTER (kind = 'receipt') AS receipt_at,
        min(created_at) FILTER (kind = 'inspection') AS inspection_at
    FROM owned_documents GROUP BY return_id;

CREATE TEMP TABLE history_stats AS
    SELECT return_id, count(*) AS changes, count(*) FILTER (regression) AS regressions,
        arg_min("at", n) FILTER (to_status = 'closed') AS closed_at,
        arg_min("at", n) FILTER (to_status = 'approved') AS approved_at,
        string_agg(coalesce(from_status, 'None') || ' -> ' || to_status, ', ' ORDER BY n) FILTER (regression) AS moves_back,
        bool_or(to_status = 'refunded') AS refunded_shown,
        -- Only the layer moves a return out of cancelled (a customer cannot take a cancellation back).
        string_agg('cancelled -> ' || to_status, ', ' ORDER BY n) FILTER (from_status = 'cancelled') AS reopened
    FROM history GROUP BY return_id;

CREATE TEMP TABLE portal AS
    SELECT id AS return_id, arg_max(status, n) AS status, arg_max(requested_at, n) AS requested_at,
        arg_max(refund_amount, n) AS refund_amount, arg_max(refund_memo_id, n) AS refund_memo_id FROM returns GROUP BY id;

-- Event types whose every delivery had to be refused (malformed, forged, skewed, with no clean
-- copy): a correct layer could not act on those facts.
CREATE TEMP TABLE excused AS
    SELECT return_id,
        bool_or(event_type = 'return.created') AS created_bad,
        bool_or(event_type = 'inspection.completed') AS inspection_bad,
        bool_or(event_type IN ('receipt.completed', 'inspection.completed')) AS goods_bad,
        string_agg(DISTINCT event_type, ', ' ORDER BY event_type) AS event_types
    FROM (SELECT correlation_id AS return_id, event_type FROM faults GROUP BY correlation_id, event_id, event_type
          HAVING bool_or(kind IN {_in(BAD_DELIVERY)}) AND NOT bool_or(kind IN {_in(CLEAN_COPY)}))
    GROUP BY return_id;

-- When the layer was first offered each fact a receiver could accept (not malformed, forged or
-- skewed), and when that attempt was due: the layer's turn begins at the first, and the harness's
-- own lateness is the gap (see the SLAs in checks).
CREATE TEMP TABLE offers AS
    SELECT correlation_id AS return_id,
        min(sent_at) FILTER (event_type = 'return.created') AS request_offered_at,
        arg_min(intended_at, sent_at) FILTER (event_type = 'return.created') AS request_due_at,
        min(sent_at) FILTER (event_type = 'inspection.completed') AS inspection_offered_at,
        arg_min(intended_at, sent_at) FILTER (event_type = 'inspection.completed') AS inspection_due_at
    FROM deliveries WHERE sent_at IS NOT NULL AND coalesce(fault, '') NOT IN {_in(NOT_OFFERED)} GROUP BY ALL;

CREATE TEMP TABLE per_return AS
    SELECT e.*,
        coalesce(r.rmas, 0) AS rmas, r.rma_at,
        coalesce(d.memos, 0) AS memos, d.memo_amount, d.memo_id, d.memo_at, coalesce(d.adjustments, 0) AS adjustments,
        coalesce(d.replacements, 0) AS replacements, coalesce(d.asns, 0) AS asns, d.asn_at, coalesce(d.labels, 0) AS labels,
        coalesce(d.receipts, 0) AS receipts, d.receipt_at, d.inspection_at, d.label_at,
        coalesce(h.changes, 0) AS changes, coalesce(h.regressions, 0) AS regressions, h.moves_back, h.reopened, h.approved_at, h.closed_at,
        o.request_offered_at, o.request_due_at, o.inspection_offered_at, o.inspection_due_at,
        p.status, p.requested_at, p.refund_amount, p.refund_memo_id, coalesce(h.refunded_shown, false) AS refunded_shown,
        coalesce(x.created_bad, false) AS created_excused, coalesce(x.goods_bad, false) AS goods_excused,
        -- The warehouse inspected it and the layer could know (the receipt and inspection did not
        -- only ever arrive malformed or forged): the inspection's writes are owed.
        e.inspected_units > 0 AND NOT coalesce(x.goods_bad, false) AS owed_goods
    FROM expected e LEFT JOIN rma_stats r USING (return_id) LEFT JOIN document_stats d USING (return_id)
        LEFT JOIN history_stats h USING (return_id) LEFT JOIN portal p USING (return_id) LEFT JOIN excused x USING (return_id)
        LEFT JOIN offers o USING (return_id);
"""


def index(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(INDEX)


def documents(con: duckdb.DuckDBPyConnection, return_ids: list[str], kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """Return id -> the ids of its documents of these kinds ("rma" too), kind by kind in the order
    the fakes kept them: what a violation names."""
    if not return_ids or not kinds:
        return {}
    rows = con.execute(f"""
        SELECT return_id, list(id ORDER BY list_position(?, kind), first_n) FROM (
            SELECT return_id, kind, id, min(n) AS first_n FROM (
                SELECT return_id, 'rma' AS kind, id, n FROM rmas WHERE return_id IS NOT NULL
                UNION ALL SELECT return_id, kind, id, n FROM owned_documents)
            WHERE kind IN {_in(kinds)} AND return_id IN (SELECT unnest(?)) GROUP BY ALL)
        GROUP BY return_id""", [list(kinds), return_ids]).fetchall()
    return dict(rows)


def iso(value: Any) -> Any:
    """A table's timestamp as the fakes wrote it: ISO 8601, UTC."""
    return value.isoformat() + "Z" if isinstance(value, datetime) else value


def evidence(con: duckdb.DuckDBPyConnection, return_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Return id -> the faults injected into it, its deliveries and the layer's writes (the first
    :data:`EVIDENCE_ROWS` of each), for the returns a check listed."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"faults": [], "deliveries": [], "journal": []})
    if not return_ids:
        return out
    listed = "correlation_id IN (SELECT unnest(?))"
    queries = {
        "faults": "SELECT correlation_id, kind || ' ' || event_id || ' ' || event_type FROM faults "
                  f"WHERE {listed} ORDER BY n",
        "deliveries": "SELECT correlation_id, event_id, event_type, attempt, status, fault FROM deliveries "
                      f"WHERE {listed} "
                      f"QUALIFY row_number() OVER (PARTITION BY correlation_id ORDER BY n) <= {EVIDENCE_ROWS} ORDER BY n",
        "journal": 'SELECT correlation_id, system, method, path, status, "at", idempotency_key, fault, replayed, lost FROM journal '
                   f"WHERE method != 'GET' AND {listed} "
                   f"QUALIFY row_number() OVER (PARTITION BY correlation_id ORDER BY n) <= {EVIDENCE_ROWS} ORDER BY n",
    }
    for part, sql in queries.items():
        cursor = con.execute(sql, [sorted(return_ids)])
        names = [d[0] for d in cursor.description][1:]
        for rid, *values in cursor.fetchall():
            out[rid][part].append(values[0] if part == "faults" else {k: iso(v) for k, v in zip(names, values)})
    return out
