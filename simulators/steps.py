"""The steps of docs/CONTRACT.md a layer takes against the fakes: each write it makes, the token
it fetches and the reads on the way, as (system, method, path glob). The fault sweep aims at
these and the coverage view counts them, so both name the same steps."""

from __future__ import annotations

from typing import NamedTuple


class Step(NamedTuple):
    system: str
    method: str
    path: str  # a glob, as fault rules match paths


STEPS: dict[str, tuple[Step, ...]] = {
    "token": (Step("erp", "POST", "/oauth/token"),),
    "rma": (Step("erp", "POST", "/return-authorizations"),),
    "label": (Step("carrier", "POST", "/labels"),),
    "asn": (Step("wms", "POST", "/expected-receipts"),),
    "portal move": (Step("returns_portal", "PATCH", "/returns/*"),),
    "adjustment": (Step("erp", "POST", "/inventory-adjustments"),),
    "credit memo": (Step("erp", "POST", "/credit-memos"),),
    "supplier claim": (Step("erp", "POST", "/supplier-claims"),),
    "replacement": (Step("erp", "POST", "/sales-orders"),),
    "reads": tuple(Step(system, "GET", "*") for system in ("erp", "carrier", "wms", "returns_portal")),
}

API_FAULTS = ("latency", "error", "outage", "rate_limit", "concurrency_limit", "token_expiry", "commit_then_lose")
WRITES = tuple(s for s in STEPS if s not in ("token", "reads"))


def applies(step: str, kind: str, system: str) -> bool:
    """Whether a fault kind can meet a step at all: only the ERP's OAuth tokens expire (the other
    systems take static API keys), and a token request carries no token to expire."""
    return kind != "token_expiry" or system == "erp" and step != "token"
