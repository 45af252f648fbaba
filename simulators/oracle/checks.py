"""The invariants and SLAs, each a small named checker (after Jepsen's): it reads the expected
outcomes and the observed history and returns a :class:`Result` — valid true, false or unknown
(the history cannot decide), counts, and every violation with its evidence.

Outcomes are classified as a set checker does: ``ok``; ``lost`` (expected, never happened);
``duplicated`` (happened more than once); ``unexpected`` (happened, never expected); ``wrong``
(happened with the wrong content); ``late`` (happened outside its SLA or before its time).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.oracle.observed import Observed, when
from simulators.oracle.record import RunRecord

RANK = {"requested": 0, "approved": 1, "rejected": 1, "cancelled": 1, "in_transit": 2, "received": 3, "refunded": 4, "closed": 5}


@dataclass
class Result:
    valid: bool | None
    counts: Counter = field(default_factory=Counter)
    violations: list[dict[str, Any]] = field(default_factory=list)
    sla: dict[str, Any] | None = None

    def flag(self, kind: str, rid: str, message: str, evidence: dict[str, Any]) -> None:
        self.counts[kind] += 1
        self.violations.append({"return_id": rid, "correlation_id": rid, "kind": kind, "message": message, "evidence": evidence})


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # invariant | sla
    title: str
    meaning: str
    run: Callable[[RunRecord, Observed], Result]


CHECKS: list[Check] = []


def check(name: str, title: str, meaning: str, kind: str = "invariant"):
    def register(fn: Callable[[RunRecord, Observed], Result]) -> Callable[[RunRecord, Observed], Result]:
        CHECKS.append(Check(name, kind, title, meaning, fn))
        return fn
    return register


def _decided(result: Result) -> Result:
    """Valid unless something was flagged; unknown when nothing at all was looked at."""
    if result.valid is None and result.counts:
        result.valid = not result.violations
    return result


def _ids(docs: list[dict]) -> list[str]:
    return [d["id"] for d in docs]


def _inspection_owed(exp: dict, excused: list[str]) -> bool:
    """The warehouse inspected the return and the layer could know it: its writes are owed.
    (Not when the receipt or inspection only ever arrived malformed or forged.)"""
    return bool(exp["inspected"]) and not {"receipt.completed", "inspection.completed"} & set(excused)


# -- invariants ----------------------------------------------------------------------------------


@check("one-rma-per-approved-return", "Exactly one RMA per eligible return, none for ineligible ones",
       "A second RMA authorizes a second refund; an RMA for an ineligible return lets a customer return what policy refuses.")
def one_rma(record: RunRecord, seen: Observed) -> Result:
    result, excused = Result(None), seen.bad_only()
    for rid, exp in record.expected.items():
        rmas = seen.rmas.get(rid, [])
        if not exp["eligible"]:
            if rmas:
                result.flag("unexpected", rid, f"{exp['ineligible_reason']}, yet RMA {', '.join(_ids(rmas))}", seen.evidence(rid, _ids(rmas)))
            else:
                result.counts["ok"] += 1
        elif len(rmas) > 1:
            result.flag("duplicated", rid, f"{len(rmas)} RMAs: {', '.join(_ids(rmas))}", seen.evidence(rid, _ids(rmas)))
        elif not rmas and exp["outcome"] != "cancelled" and "return.created" not in excused.get(rid, []):
            result.flag("lost", rid, f"no RMA (the return ended {exp['outcome']})", seen.evidence(rid))
        else:
            result.counts["ok"] += 1
    return _decided(result)


@check("one-credit-memo-per-refund", "Exactly one credit memo per refunded return, with the policy's amount",
       "A missing memo leaves the customer unpaid; a second one or a wrong amount pays out money the policy does not owe.")
def one_memo(record: RunRecord, seen: Observed) -> Result:
    result, excused = Result(None), seen.bad_only()
    for rid, exp in record.expected.items():
        memos = seen.memos.get(rid, [])
        ids = _ids(memos)
        owed = _inspection_owed(exp, excused.get(rid, [])) and exp["resolution"] != "exchange"
        if len(memos) > 1:
            result.flag("duplicated", rid, f"{len(memos)} credit memos: {', '.join(ids)}", seen.evidence(rid, ids))
        elif memos and exp["resolution"] == "exchange":
            result.flag("unexpected", rid, f"credit memo {ids[0]} for an exchange", seen.evidence(rid, ids))
        elif memos and owed and memos[0]["total"]["amount"] != exp["refund_cents"]:
            result.flag("wrong", rid, f"{ids[0]} credits {memos[0]['total']['amount']} cents; the policy says {exp['refund_cents']}",
                        seen.evidence(rid, ids))
        elif not memos and owed:
            result.flag("lost", rid, f"no credit memo (the return ended {exp['outcome']})", seen.evidence(rid))
        elif owed or memos:
            result.counts["ok"] += 1
    return _decided(result)


@check("no-refund-before-inspection", "No credit memo before the warehouse inspected the return",
       "Refunding on receipt pays for empty boxes and swapped items.")
def refund_after_inspection(record: RunRecord, seen: Observed) -> Result:
    result = Result(None)
    for rid, memos in seen.memos.items():
        inspected = [when(i["created_at"]) for i in seen.inspections.get(rid, [])]
        for memo in memos:
            if not inspected or when(memo["created_at"]) < min(inspected):
                result.flag("late", rid, f"{memo['id']} posted {memo['created_at']}, before any inspection", seen.evidence(rid, [memo["id"]]))
            else:
                result.counts["ok"] += 1
    return _decided(result)


def _units_by(docs: list[dict], key: Callable[[dict], str], quantity: Callable[[dict], int]) -> dict[str, int]:
    units: Counter = Counter()
    for doc in docs:
        units[key(doc)] += quantity(doc)
    return {k: v for k, v in units.items() if v}


@check("stock-matches-dispositions", "Inventory adjustments per item, site and stock status equal the inspected dispositions",
       "Stock moved twice is phantom stock sold to the next customer; stock never moved is lost to sale.")
def stock(record: RunRecord, seen: Observed) -> Result:
    result, excused = Result(None), seen.bad_only()
    for rid, exp in record.expected.items():
        got = _units_by(seen.adjustments.get(rid, []), lambda a: f"{a['item_id']}|{a['site_id']}|{a['stock_status']}", lambda a: a["quantity"])
        owed = _inspection_owed(exp, excused.get(rid, []))
        want = exp["stock"] if owed else {}
        if not owed and not got:
            continue
        if got == want:
            result.counts["ok"] += 1
            continue
        if not want:
            kind = "unexpected"
        elif all(got.get(k, 0) >= v for k, v in want.items()):
            kind = "duplicated"
        else:
            kind = "lost" if not got else "wrong"
        result.flag(kind, rid, f"stock moved {got or 'nothing'}; the inspection says {want or 'nothing'}",
                    seen.evidence(rid, _ids(seen.adjustments.get(rid, []))))
    return _decided(result)


@check("supplier-claims-match", "One supplier claim's units per return-to-vendor line",
       "Units sent back to vendors without a claim are money not recovered; claimed twice is a dispute with the vendor.")
def claims(record: RunRecord, seen: Observed) -> Result:
    result, excused = Result(None), seen.bad_only()
    for rid, exp in record.expected.items():
        docs = seen.claims.get(rid, [])
        got: Counter = Counter()
        for claim in docs:
            for line in claim["lines"]:
                got[line["item_id"]] += line["quantity"]
        owed = _inspection_owed(exp, excused.get(rid, []))
        want = exp["supplier_claims"] if owed else {}
        if not owed and not got:
            continue
        if dict(got) == want:
            result.counts["ok"] += 1
        else:
            result.flag("wrong" if got else "lost", rid, f"claimed {dict(got) or 'nothing'}; returned to vendor {want or 'nothing'}",
                        seen.evidence(rid, _ids(docs)))
    return _decided(result)


@check("one-replacement-per-exchange", "Exactly one replacement order per inspected exchange, none otherwise",
       "A missing replacement leaves the customer with nothing; two ship two free items.")
def replacements(record: RunRecord, seen: Observed) -> Result:
    result, excused = Result(None), seen.bad_only()
    for rid, exp in record.expected.items():
        docs = seen.replacements.get(rid, [])
        owed = _inspection_owed(exp, excused.get(rid, []))
        want = 1 if owed and exp["replacement"] else 0
        if not owed and not docs:
            continue
        if len(docs) == want:
            result.counts["ok"] += 1
        else:
            kind = "lost" if len(docs) < want else ("duplicated" if want else "unexpected")
            result.flag(kind, rid, f"{len(docs)} replacement order(s), expected {want}", seen.evidence(rid, _ids(docs)))
    return _decided(result)


@check("one-asn-and-label-before-arrival", "One label and one expected receipt per RMA, the ASN before the parcel arrived",
       "A parcel with no ASN is a blind receipt someone must research by hand; two labels or ASNs confuse the dock.")
def asn_and_label(record: RunRecord, seen: Observed) -> Result:
    result = Result(None)
    for rid in record.expected:
        rmas = seen.rmas.get(rid, [])
        if not rmas:
            continue
        asns, labels = seen.asns.get(rid, []), seen.labels.get(rid, [])
        docs = _ids(asns) + _ids(labels)
        if len(asns) > len(rmas) or len(labels) > len(rmas):
            result.flag("duplicated", rid, f"{len(labels)} label(s) and {len(asns)} ASN(s) for {len(rmas)} RMA(s)", seen.evidence(rid, docs))
            continue
        receipts = seen.receipts.get(rid, [])
        if receipts and (not asns or when(asns[0]["created_at"]) > min(when(r["created_at"]) for r in receipts)):
            result.flag("late", rid, "the parcel arrived before its expected receipt", seen.evidence(rid, docs + _ids(receipts)))
            continue
        result.counts["ok"] += 1
    return _decided(result)


@check("no-status-regression", "The portal status of a return never moves backwards",
       "A refunded return shown as in transit again tells the customer their parcel is lost.")
def no_regression(record: RunRecord, seen: Observed) -> Result:
    result = Result(None)
    for rid in record.expected:
        back = [c for c in seen.history.get(rid, []) if c.get("regression")]
        if back:
            moves = ", ".join(f"{c['from']} -> {c['to']}" for c in back)
            result.flag("wrong", rid, f"moved back: {moves}", seen.evidence(rid))
        elif rid in seen.history:
            result.counts["ok"] += 1
    return _decided(result)


@check("every-return-ends", "Every return reaches the end it should: closed, rejected or cancelled",
       "A stalled return is a customer waiting for a label or a refund; it shows where the integration stopped.")
def terminal(record: RunRecord, seen: Observed) -> Result:
    result, excused = Result(None), seen.bad_only()
    for rid, exp in record.expected.items():
        status = seen.returns.get(rid, {}).get("status")
        if not exp["eligible"] and status not in ("rejected", "cancelled"):
            if "return.created" in excused.get(rid, ()):
                result.counts["excused"] += 1  # the request only ever arrived forged or malformed
            else:
                result.flag("lost", rid, f"ineligible ({exp['ineligible_reason']}) but {status}, not rejected", seen.evidence(rid))
        elif exp["outcome"].startswith("stalled"):
            if excused.get(rid):
                result.counts["excused"] += 1  # its facts only ever arrived malformed or forged
            else:
                result.flag("lost", rid, f"{exp['outcome'].removeprefix('stalled:')} (portal: {status})", seen.evidence(rid))
        else:
            result.counts["ok"] += 1
    return _decided(result)


@check("nothing-for-bad-input", "Malformed, forged or stale deliveries cause no writes",
       "Acting on a forged webhook lets anyone who can reach the endpoint trigger refunds.")
def bad_input(record: RunRecord, seen: Observed) -> Result:
    result = Result(None)
    for rid, event_types in seen.bad_only().items():
        acted = []
        if "return.created" in event_types and seen.rmas.get(rid):
            acted.append(f"RMA {', '.join(_ids(seen.rmas[rid]))}")
        if "inspection.completed" in event_types and (seen.memos.get(rid) or seen.adjustments.get(rid)):
            acted.append("credit memo or stock adjustments")
        if acted:
            result.flag("unexpected", rid, f"only refused deliveries of {', '.join(sorted(set(event_types)))}, yet {'; '.join(acted)}",
                        seen.evidence(rid))
        else:
            result.counts["ok"] += 1
    return _decided(result)


@check("retry-after-honoured", "After a 429 or 503 with Retry-After, the same call waits that long",
       "Hammering a throttled ERP gets the integration's client blocked, and every return with it.")
def retry_after(record: RunRecord, seen: Observed) -> Result:
    result = Result(None)
    for system, entries in record.journals.items():
        waiting: dict[tuple, dict] = {}
        for entry in entries:  # in the order the fake answered them
            if not entry.get("correlation_id"):
                continue  # a call made for no return (a token, say) cannot be told apart from another one
            # Not the principal: a request refused by a fault was refused before authentication.
            key = (entry["correlation_id"], entry["method"], entry["path"])
            started = entry["wall"] - entry.get("duration_ms", 0) / 1000
            refused = waiting.pop(key, None)
            if refused is not None:
                ready = refused["wall"] + refused["retry_after_s"]
                if started < ready - 0.05:
                    rid = entry.get("correlation_id") or "?"
                    result.flag("late", rid, f"{system} {entry['method']} {entry['path']} again after {started - refused['wall']:.2f} s;"
                                f" Retry-After said {refused['retry_after_s']:g} s", seen.evidence(rid))
                else:
                    result.counts["ok"] += 1
            if entry.get("retry_after_s") is not None and entry["status"] in (429, 503):
                waiting[key] = entry
    return _decided(result)


@check("idempotency-keys-on-writes", "Every POST carries an Idempotency-Key (and every call the return's correlation id)",
       "Without a key, a write whose answer was lost is done twice when retried.")
def keys(record: RunRecord, seen: Observed) -> Result:
    result = Result(None)
    calls = keyed = correlated = 0
    for system, entries in record.journals.items():
        for entry in entries:
            if entry["path"] == "/oauth/token" or entry.get("principal") is None:
                continue
            calls += 1
            correlated += bool(entry.get("correlation_id"))
            if entry["method"] == "POST":
                if entry.get("idempotency_key"):
                    keyed += 1
                    result.counts["ok"] += 1
                else:
                    rid = entry.get("correlation_id") or "?"
                    result.counts["unkeyed"] += 1
                    if len(result.violations) < 200:
                        result.violations.append({"return_id": rid, "correlation_id": rid, "kind": "unkeyed",
                                                  "message": f"{system} POST {entry['path']} without Idempotency-Key", "evidence": {}})
    if calls:
        result.counts["correlated_percent"] = round(100 * correlated / calls)
        writes = result.counts["ok"] + result.counts["unkeyed"]
        result.counts["keyed_percent"] = round(100 * keyed / writes) if writes else 100
    result.valid = None if not calls else not result.counts["unkeyed"]
    return result


# -- SLAs ------------------------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank percentile: exact, no interpolation."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _sla(metric: str, p: float, threshold: float, unit: str, samples: list[float], missing: int = 0) -> Result:
    if not samples:
        return Result(None, Counter(missing=missing), sla={"metric": metric, "percentile": p, "threshold": threshold, "unit": unit,
                                                          "observed": None, "samples": 0, "distribution": []})
    observed = percentile(samples, p)
    result = Result(observed <= threshold, Counter(samples=len(samples), over=sum(s > threshold for s in samples), missing=missing))
    result.sla = {"metric": metric, "percentile": p, "threshold": threshold, "unit": unit, "observed": round(observed, 3),
                  "samples": len(samples), "distribution": [round(s, 3) for s in samples[:10_000]]}
    return result


def _hours(start: str, end: str) -> float:
    return max(0.0, (when(end) - when(start)).total_seconds() / 3600)


@check("request-to-rma", "Return request to RMA", "Customers wait for their label while no RMA exists.", kind="sla")
def sla_rma(record: RunRecord, seen: Observed) -> Result:
    samples, missing = [], 0
    for rid, exp in record.expected.items():
        if not exp["eligible"]:
            continue
        rmas, ret = seen.rmas.get(rid), seen.returns.get(rid)
        if rmas and ret:
            samples.append(_hours(ret["requested_at"], rmas[0]["created_at"]))
        elif exp["outcome"] != "cancelled":
            missing += 1
    return _sla("request_to_rma_hours", 95, record.scenario["slas"]["request_to_rma_hours_p95"], "hours", samples, missing)


@check("inspection-to-credit", "Inspection to credit memo", "The refund promised after inspection is late.", kind="sla")
def sla_credit(record: RunRecord, seen: Observed) -> Result:
    samples = []
    for rid, memos in seen.memos.items():
        inspections = seen.inspections.get(rid)
        if inspections:
            samples.append(_hours(min(i["created_at"] for i in inspections), memos[0]["created_at"]))
    return _sla("inspection_to_credit_hours", 95, record.scenario["slas"]["inspection_to_credit_hours_p95"], "hours", samples)


@check("request-to-closed", "Return request to closed", "The whole return takes longer than customers are promised.", kind="sla")
def sla_closed(record: RunRecord, seen: Observed) -> Result:
    samples = []
    for rid, changes in seen.history.items():
        closed = [c["at"] for c in changes if c["to"] == "closed"]
        if closed and rid in seen.returns:
            samples.append(_hours(seen.returns[rid]["requested_at"], closed[0]) / 24)
    return _sla("request_to_closed_days", 95, record.scenario["slas"]["request_to_closed_days_p95"], "days", samples)


@check("acknowledgement-latency", "Webhook acknowledgement latency (from the intended send time)",
       "Slow answers are retried by the sender: duplicates and a growing backlog.", kind="sla")
def sla_ack(record: RunRecord, seen: Observed) -> Result:
    samples = [a["latency_ms"] for a in record.deliveries if a.get("status") is not None and a.get("latency_ms") is not None]
    return _sla("ack_latency_ms", 99, record.scenario["slas"]["ack_latency_ms_p99"], "ms", samples)
