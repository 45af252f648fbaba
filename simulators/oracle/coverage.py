"""What a run exercised: each write the contract names against each fault the fakes have, each
event type against each delivery fault, and each customer behaviour; and, per check, the
opportunities the run gave a defect to show (its exposure). A PASS that was never exposed to
its fault says nothing, and the verdict says so.
"""

from __future__ import annotations

from typing import Any

import duckdb

# The writes of docs/CONTRACT.md, told apart by system, method and path in the journal.
STEPS = {
    "token": "system = 'erp' AND path = '/oauth/token'",
    "rma": "system = 'erp' AND method = 'POST' AND path = '/return-authorizations'",
    "label": "system = 'carrier' AND method = 'POST' AND path = '/labels'",
    "asn": "system = 'wms' AND method = 'POST' AND path = '/expected-receipts'",
    "portal move": "system = 'returns_portal' AND method = 'PATCH' AND path LIKE '/returns/%'",
    "adjustment": "system = 'erp' AND method = 'POST' AND path = '/inventory-adjustments'",
    "credit memo": "system = 'erp' AND method = 'POST' AND path = '/credit-memos'",
    "supplier claim": "system = 'erp' AND method = 'POST' AND path = '/supplier-claims'",
    "replacement": "system = 'erp' AND method = 'POST' AND path = '/sales-orders'",
    "reads": "method = 'GET'",  # every look-up the layer makes on the way
}
API_FAULTS = ("latency", "error", "outage", "rate_limit", "concurrency_limit", "token_expiry", "commit_then_lose")
EVENT_TYPES = ("return.created", "return.cancelled", "tracking.updated", "receipt.completed", "inspection.completed")
EVENT_FAULTS = ("duplicate", "semantic-duplicate", "reordered", "delayed", "missing-scan", "malformed", "forged", "clock-skew",
                "rotated-secret")
BEHAVIOURS = ("cancelled", "never-shipped", "returned-to-sender", "rejected")
REFUSED = ("error", "outage", "rate_limit", "concurrency_limit")
WRITES = tuple(s for s in STEPS if s not in ("token", "reads"))

# Check -> (what a defect would need, cells summed): ("api", steps, kinds), ("events", types, kinds),
# ("behaviour", outcomes). Every named exposure counts real occurrences in this run.
EXPOSURE: dict[str, list[tuple[str, tuple]]] = {
    "one-rma-per-approved-return": [("return.created delivered again", ("events", ("return.created",), ("duplicate", "semantic-duplicate"))),
                                    ("RMA responses lost", ("api", ("rma",), ("commit_then_lose",))),
                                    ("RMA calls refused", ("api", ("rma",), REFUSED))],
    "one-credit-memo-per-refund": [("inspection.completed delivered again", ("events", ("inspection.completed",), ("duplicate", "semantic-duplicate"))),
                                   ("credit-memo responses lost", ("api", ("credit memo",), ("commit_then_lose",))),
                                   ("credit-memo calls refused", ("api", ("credit memo",), REFUSED))],
    "no-refund-before-inspection": [("receipt.completed delayed or reordered", ("events", ("receipt.completed",), ("reordered", "delayed")))],
    "stock-matches-dispositions": [("inspection.completed delivered again", ("events", ("inspection.completed",), ("duplicate", "semantic-duplicate"))),
                                   ("adjustment responses lost", ("api", ("adjustment",), ("commit_then_lose",))),
                                   ("adjustment calls refused", ("api", ("adjustment",), REFUSED))],
    "supplier-claims-match": [("claim responses lost", ("api", ("supplier claim",), ("commit_then_lose",))),
                              ("claim calls refused", ("api", ("supplier claim",), REFUSED))],
    "one-replacement-per-exchange": [("replacement responses lost", ("api", ("replacement",), ("commit_then_lose",))),
                                     ("replacement calls refused", ("api", ("replacement",), REFUSED))],
    "one-asn-and-label-before-arrival": [("label or ASN responses lost", ("api", ("label", "asn"), ("commit_then_lose",))),
                                         ("label or ASN calls refused", ("api", ("label", "asn"), REFUSED))],
    "no-status-regression": [("scans reordered or delayed", ("events", ("tracking.updated",), ("reordered", "delayed"))),
                             ("scans missing", ("events", ("tracking.updated",), ("missing-scan",))),
                             ("receipts or inspections reordered or delayed", ("events", ("receipt.completed", "inspection.completed"), ("reordered", "delayed")))],
    "every-return-ends": [("calls refused (5xx, 503, 429)", ("api", tuple(STEPS), REFUSED)),
                          ("tokens expired", ("api", tuple(STEPS), ("token_expiry",))),
                          ("returns cancelled", ("behaviour", ("cancelled",)))],
    "nothing-for-bad-input": [("malformed deliveries", ("events", EVENT_TYPES, ("malformed",))),
                              ("forged deliveries", ("events", EVENT_TYPES, ("forged",))),
                              ("stale signatures", ("events", EVENT_TYPES, ("clock-skew",)))],
    "retry-after-honoured": [("429 answered", ("api", tuple(STEPS), ("rate_limit", "concurrency_limit"))),
                             ("503 maintenance answered", ("api", tuple(STEPS), ("outage",)))],
    "idempotency-keys-on-writes": [("write responses lost", ("api", WRITES, ("commit_then_lose",))),
                                   ("writes refused", ("api", WRITES, REFUSED))],
    "request-to-rma": [("return.created delayed or reordered", ("events", ("return.created",), ("reordered", "delayed"))),
                       ("RMA calls refused", ("api", ("rma",), REFUSED))],
    "inspection-to-credit": [("credit-memo calls refused", ("api", ("credit memo",), REFUSED))],
    "request-to-closed": [("calls refused (5xx, 503, 429)", ("api", tuple(STEPS), REFUSED))],
    "acknowledgement-latency": [("deliveries malformed or forged", ("events", EVENT_TYPES, ("malformed", "forged")))],
}


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def coverage(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts of each (write, API fault), (event type, delivery fault) and customer behaviour."""
    step = "CASE " + " ".join(f"WHEN {where} THEN '{name}'" for name, where in STEPS.items()) + " END"
    api = {name: {"calls": 0, **dict.fromkeys(API_FAULTS, 0)} for name in STEPS}
    for name, kind, n in con.execute(f"""
            SELECT {step} AS step, coalesce(fault_kind, 'calls') AS kind, count(*) FROM journal
            WHERE {step} IS NOT NULL GROUP BY ALL""").fetchall():
        api[name][kind] = api[name].get(kind, 0) + n
    for name in api:
        api[name]["calls"] += sum(api[name][k] for k in API_FAULTS)
    events = {t: dict.fromkeys(EVENT_FAULTS, 0) for t in EVENT_TYPES}
    for event_type, kind, n in con.execute("SELECT event_type, kind, count(*) FROM faults GROUP BY ALL").fetchall():
        events.setdefault(event_type, dict.fromkeys(EVENT_FAULTS, 0))[kind] = n
    behaviour = dict.fromkeys(BEHAVIOURS, 0)
    for outcome, n in con.execute(f"SELECT outcome, count(*) FROM expected WHERE outcome IN {_in(BEHAVIOURS)} GROUP BY ALL").fetchall():
        behaviour[outcome] = n
    return {"api": api, "events": events, "behaviour": behaviour}


def exposure(check: str, cells: dict[str, Any]) -> dict[str, int]:
    """The named opportunities the run gave ``check`` to fail, counted from ``cells``."""
    out = {}
    for label, (part, *where) in EXPOSURE.get(check, []):
        if part == "behaviour":
            out[label] = sum(cells["behaviour"].get(b, 0) for b in where[0])
        else:
            rows, kinds = where
            out[label] = sum(cells[part].get(r, {}).get(k, 0) for r in rows for k in kinds)
    return out
