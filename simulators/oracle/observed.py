"""What the fakes hold after a run, indexed by return: the oracle's view of the observed history."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from simulators.oracle.record import RunRecord

BAD_DELIVERY = frozenset({"malformed", "forged", "clock-skew"})  # faults a receiver must refuse
CLEAN_COPY = frozenset({"duplicate", "semantic-duplicate"})  # faults that also deliver the fact intact


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Observed:
    def __init__(self, record: RunRecord) -> None:
        erp, wms = record.state.get("erp", {}), record.state.get("wms", {})
        carrier, portal = record.state.get("carrier", {}), record.state.get("returns_portal", {})
        self.returns = {r["id"]: r for r in portal.get("returns", [])}
        self.history: dict[str, list[dict]] = defaultdict(list)
        for change in portal.get("history", []):
            self.history[change["return_id"]].append(change)
        self.rmas: dict[str, list[dict]] = defaultdict(list)  # return id -> RMAs
        self.return_of: dict[str, str] = {}  # RMA id -> return id
        for rma in erp.get("return_authorizations", []):
            rid = rma.get("external_reference") or rma.get("correlation_id")
            if rid:
                self.rmas[rid].append(rma)
                self.return_of[rma["id"]] = rid
        # The portal also names the RMA it was approved with: a layer that leaves
        # external_reference empty is still tied back to its return.
        for rid, ret in self.returns.items():
            if ret.get("rma_id") and ret["rma_id"] not in self.return_of:
                self.return_of[ret["rma_id"]] = rid

        def by_return(documents: list[dict], key: str) -> dict[str, list[dict]]:
            out: dict[str, list[dict]] = defaultdict(list)
            for doc in documents:
                rid = self.return_of.get(doc.get(key) or "")
                if rid:
                    out[rid].append(doc)
            return out

        self.memos = by_return(erp.get("credit_memos", []), "return_authorization_id")
        self.adjustments = by_return(erp.get("inventory_adjustments", []), "return_authorization_id")
        self.claims = by_return(erp.get("supplier_claims", []), "return_authorization_id")
        self.replacements = by_return([o for o in erp.get("sales_orders", []) if o.get("replacement_for")], "replacement_for")
        self.asns = by_return(wms.get("expected_receipts", []), "rma_id")
        self.receipts = by_return(wms.get("receipts", []), "rma_id")
        self.inspections = by_return(wms.get("inspections", []), "rma_id")
        self.labels = by_return(carrier.get("labels", []), "rma_id")

        self.faults: dict[str, list[dict]] = defaultdict(list)  # return id -> faults injected
        for fault in record.faults:
            self.faults[fault["correlation_id"]].append(fault)
        self.deliveries: dict[str, list[dict]] = defaultdict(list)
        for attempt in record.deliveries:
            self.deliveries[attempt["correlation_id"]].append(attempt)
        self.calls: dict[str, list[dict]] = defaultdict(list)  # return id -> the layer's calls to the fakes
        for system, entries in record.journals.items():
            for entry in entries:
                if entry.get("correlation_id"):
                    self.calls[entry["correlation_id"]].append({**entry, "system": system})

    def bad_only(self) -> dict[str, list[str]]:
        """Return id -> event types whose every delivery had to be refused (malformed, forged,
        skewed, with no clean copy): a correct layer could not act on those facts."""
        by_event: dict[str, set[str]] = defaultdict(set)
        of_event: dict[str, tuple[str, str]] = {}
        for rid, faults in self.faults.items():
            for fault in faults:
                by_event[fault["event_id"]].add(fault["kind"])
                of_event[fault["event_id"]] = (rid, fault["event_type"])
        out: dict[str, list[str]] = defaultdict(list)
        for event_id, kinds in by_event.items():
            if kinds & BAD_DELIVERY and not kinds & CLEAN_COPY:
                rid, event_type = of_event[event_id]
                out[rid].append(event_type)
        return out

    def evidence(self, rid: str, documents: list[str] = ()) -> dict[str, Any]:
        """What a person needs to see why: faults injected, deliveries, the layer's writes."""
        writes = [
            {k: c.get(k) for k in ("system", "method", "path", "status", "at", "idempotency_key", "fault", "replayed", "lost")}
            for c in self.calls.get(rid, []) if c["method"] != "GET"
        ]
        deliveries = [
            {k: a.get(k) for k in ("event_id", "event_type", "attempt", "status", "fault")}
            for a in self.deliveries.get(rid, [])
        ]
        return {
            "faults": [f"{f['kind']} {f['event_id']} {f['event_type']}" for f in self.faults.get(rid, [])],
            "documents": list(documents),
            "deliveries": deliveries[:30],
            "journal": writes[:30],
        }
