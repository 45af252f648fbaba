"""What a run exercised: each write the contract names against each fault the fakes have, each
event type against each delivery fault, and each customer behaviour; and, per check, the
opportunities the run gave a defect to show (its exposure). A PASS that was never exposed to
its fault says nothing, and the verdict says so.
"""

from __future__ import annotations

from typing import Any

import duckdb

from simulators.faults import SIGNATURE_FAULTS  # n/a for facts that travel unsigned
from simulators.steps import API_FAULTS, STEPS, WRITES, Step, applies


def _where(step: Step) -> str:
    path = step.path.replace("*", "%")
    match = f"path LIKE '{path}'" if "%" in path else f"path = '{path}'"
    return f"(system = '{step.system}' AND method = '{step.method}' AND {match})"


# Each step of docs/CONTRACT.md, told apart by system, method and path in the journal.
STEP_SQL = {name: " OR ".join(_where(s) for s in steps) for name, steps in STEPS.items()}
EVENT_TYPES = ("return.created", "return.cancelled", "tracking.updated", "receipt.completed", "inspection.completed")
EVENT_FAULTS = ("duplicate", "semantic-duplicate", "reordered", "delayed", "missing-scan", "malformed", "forged", "clock-skew",
                "rotated-secret")
BEHAVIOURS = ("cancelled", "cancelled before approval", "never-shipped", "returned-to-sender", "rejected", "other-site",
              "partial receipt")
REFUSED = ("error", "outage", "rate_limit", "concurrency_limit")
AIMED = "kills just after an acknowledgement"  # the nemesis's aimed kill (n/a when the scenario aims none)

# Check -> (what a defect would need, cells summed): ("api", steps, kinds), ("events", types, kinds),
# ("behaviour", outcomes). Every named exposure counts real occurrences in this run.
EXPOSURE: dict[str, list[tuple[str, tuple]]] = {
    "one-rma-per-approved-return": [("return.created delivered again", ("events", ("return.created",), ("duplicate", "semantic-duplicate"))),
                                    ("RMA responses lost", ("api", ("rma",), ("commit_then_lose",))),
                                    ("RMA calls refused", ("api", ("rma",), REFUSED))],
    "one-credit-memo-per-refund": [("parcels a unit short (refund what arrived)", ("behaviour", ("partial receipt",))),
                                   ("inspection.completed delivered again", ("events", ("inspection.completed",), ("duplicate", "semantic-duplicate"))),
                                   ("credit-memo responses lost", ("api", ("credit memo",), ("commit_then_lose",))),
                                   ("credit-memo calls refused", ("api", ("credit memo",), REFUSED)),
                                   ("layer killed just after acknowledging a fact", ("nemesis", (AIMED,)))],
    "no-refund-before-inspection": [("receipt.completed delayed or reordered", ("events", ("receipt.completed",), ("reordered", "delayed")))],
    "stock-matches-dispositions": [("inspection.completed delivered again", ("events", ("inspection.completed",), ("duplicate", "semantic-duplicate"))),
                                   ("parcels received at another site", ("behaviour", ("other-site",))),
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
                          ("returns cancelled", ("behaviour", ("cancelled",))),
                          ("layer killed", ("nemesis", ("kills",)))],
    "portal-shows-the-refund": [("credit-memo responses lost", ("api", ("credit memo",), ("commit_then_lose",))),
                                ("portal moves refused or lost", ("api", ("portal move",), (*REFUSED, "commit_then_lose")))],
    "cancelled-stays-cancelled": [("returns cancelled before approval", ("behaviour", ("cancelled before approval",))),
                                  ("returns cancelled (any stage)", ("behaviour", ("cancelled",)))],
    "nothing-for-bad-input": [("malformed deliveries", ("events", EVENT_TYPES, ("malformed",))),
                              ("forged deliveries", ("events", EVENT_TYPES, ("forged",))),
                              ("stale signatures", ("events", EVENT_TYPES, ("clock-skew",)))],
    "poison-dead-lettered": [("malformed messages handed over a queue", ("queue", ("poison messages",)))],
    "truncated-file-refused": [("batch files cut short", ("files", ("cut short",)))],
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


def coverage(con: duckdb.DuckDBPyConnection, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts of each (write, API fault), (event type, delivery fault) and customer behaviour, and
    the layer's kills when the scenario asked for them."""
    step = "CASE " + " ".join(f"WHEN {where} THEN '{name}'" for name, where in STEP_SQL.items()) + " END"
    api = {name: {"calls": 0, **{k: 0 if _applies(name, k) else None for k in API_FAULTS}} for name in STEPS}
    # A slowed request may also have lost its answer (two faults, one journal kind): latency is
    # counted from the delay the fake added, the other kinds from the fault that answered.
    for name, kind, n in con.execute(f"""
            SELECT {step} AS step, kind, count(*) FROM (
                SELECT *, coalesce(nullif(fault_kind, 'latency'), 'calls') AS kind FROM journal
                UNION ALL BY NAME SELECT *, 'latency' AS kind FROM journal WHERE latency_ms IS NOT NULL)
            WHERE {step} IS NOT NULL GROUP BY ALL""").fetchall():
        api[name][kind] = api[name].get(kind, 0) + n
    for name in api:
        api[name]["calls"] += sum(api[name][k] or 0 for k in API_FAULTS if k != "latency")
    # Only carrier scans go missing: a missing receipt or inspection is a stalled return, not a fault.
    events = {t: {k: None if k == "missing-scan" and t != "tracking.updated" else 0 for k in EVENT_FAULTS} for t in EVENT_TYPES}
    for event_type in (summary or {}).get("unsigned_events", ()):  # no signature: nothing to forge or skew
        events[event_type].update(dict.fromkeys(SIGNATURE_FAULTS, None))
    for event_type in (summary or {}).get("batch_events", ()):  # a record is not malformed alone: its file is cut short
        events[event_type]["malformed"] = None
    for event_type, kind, n in con.execute(f"SELECT event_type, kind, count(*) FROM faults WHERE kind IN {_in(EVENT_FAULTS)} "
                                           "GROUP BY ALL").fetchall():
        events.setdefault(event_type, dict.fromkeys(EVENT_FAULTS, 0))[kind] = n
    behaviour = dict.fromkeys(BEHAVIOURS, 0)
    for outcome, n in con.execute(f"SELECT outcome, count(*) FROM expected WHERE outcome IN {_in(BEHAVIOURS)} GROUP BY ALL").fetchall():
        behaviour[outcome] = n
    behaviour["other-site"] = (summary or {}).get("misrouted", 0)  # parcels received at another site than their label's
    behaviour["cancelled before approval"] = (summary or {}).get("cancelled_early", 0)
    behaviour["partial receipt"] = (summary or {}).get("partial_receipts", 0)
    cells: dict[str, Any] = {"api": api, "events": events, "behaviour": behaviour}
    if "broker" in (summary or {}).get("channels", ()):  # facts went through a queue: its poison too
        cells["queue"] = {"poison messages": con.execute("SELECT count(*) FROM dead_letters").fetchone()[0]}
    if "batch" in (summary or {}).get("channels", ()):  # facts went in files: what happened to the files
        exported, cut, twice = con.execute("SELECT count(DISTINCT file), count(DISTINCT file) FILTER (truncated), "
                                           "count(DISTINCT file) FILTER (copy_of IS NOT NULL) FROM batch_records").fetchone()
        cells["files"] = {"exported": exported, "cut short": cut, "exported twice": twice}
    kills = (summary or {}).get("kills")
    if kills is not None:
        aimed = sum("after" in k for k in kills) if (summary or {}).get("kill_aim") else None
        cells["nemesis"] = {"kills": len(kills), AIMED: aimed}
    return cells


def _applies(name: str, kind: str) -> bool:
    return any(applies(name, kind, step.system) for step in STEPS[name])


def gaps(cells: dict[str, Any]) -> list[str]:
    """The cells this run left at zero, as 'step × fault' (n/a cells, which cannot happen, aside)."""
    out = [f"{step} × {kind}" for step, row in cells.get("api", {}).items() for kind, n in row.items() if kind != "calls" and n == 0]
    out += [f"{t} × {kind}" for t, row in cells.get("events", {}).items() for kind, n in row.items() if n == 0]
    out += [b for b, n in cells.get("behaviour", {}).items() if n == 0]
    out += [f"{part}: {k}" for part in ("queue", "files") for k, n in cells.get(part, {}).items() if n == 0]
    return out + [f"layer {k}" for k, n in cells.get("nemesis", {}).items() if n == 0]


def exposure(check: str, cells: dict[str, Any]) -> dict[str, int]:
    """The named opportunities the run gave ``check`` to fail, counted from ``cells``."""
    out = {}
    for label, (part, *where) in EXPOSURE.get(check, []):
        if part in ("behaviour", "nemesis", "queue", "files"):
            out[label] = sum(cells.get(part, {}).get(b, 0) for b in where[0])
        else:
            rows, kinds = where
            out[label] = sum(cells[part].get(r, {}).get(k) or 0 for r in rows for k in kinds)
    return out
