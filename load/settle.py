"""After the load: wait for the integration layer to finish what it was sent, read the fakes,
and reconcile every return the load made against what should have followed.

Runs in the load's master (or single) process and talks to the fakes over HTTP only, so the
load environment may live on another machine. The fakes' journals are read in full (spilled
entries included) through their admin API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from load.journeys import expectation, settled
from simulators.oracle import RunRecord, reconcile
from simulators.seed import MasterData

PAGE = 1000
JOURNAL_PAGE = 10_000


class Fakes:
    """The fakes' reads the settle phase and the oracle need."""

    def __init__(self, env: dict[str, Any], timeout_s: float = 30.0) -> None:
        self.urls = env["fakes"]
        self.portal_key = env["credentials"]["RH_RETURNS_PORTAL_API_KEY"]
        token = env.get("admin_token")
        self.http = httpx.Client(timeout=timeout_s, headers={"authorization": f"Bearer {token}"} if token else None)

    def close(self) -> None:
        self.http.close()

    def portal_returns(self) -> dict[str, dict[str, Any]]:
        """Every return the portal holds (paged with ``after``)."""
        out: dict[str, dict[str, Any]] = {}
        after = None
        while True:
            params = {"limit": PAGE, **({"after": after} if after else {})}
            page = self.http.get(f"{self.urls['returns_portal']}/returns", params=params,
                                 headers={"authorization": f"Bearer {self.portal_key}"})
            page.raise_for_status()
            rows = page.json()
            out.update((r["id"], r) for r in rows)
            if len(rows) < PAGE:
                return out
            after = rows[-1]["id"]

    def state(self, system: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.urls[system]}/__admin/state")
        answer.raise_for_status()
        return answer.json()

    def journal(self, system: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        since = 0
        while True:
            answer = self.http.get(f"{self.urls[system]}/__admin/journal",
                                   params={"since": since, "limit": JOURNAL_PAGE, "include_spilled": "true"})
            answer.raise_for_status()
            page = answer.json()["entries"]
            entries += page
            if len(page) < JOURNAL_PAGE:
                return entries
            since = page[-1]["seq"]


def settle(fakes: Fakes, journeys: dict[str, dict[str, Any]], timeout_s: float, *,
           sleep: Callable[[float], None] = time.sleep, interval_s: float = 0.5,
           cut_short: Callable[[], bool] = lambda: False) -> tuple[dict[str, str | None], float]:
    """Poll the portal until every journey got what it is owed, ``timeout_s`` passed or
    ``cut_short()`` says to stop waiting. Returns each return's last portal status and the seconds waited."""
    started = time.monotonic()
    while True:
        returns = fakes.portal_returns()
        statuses = {rid: returns.get(rid, {}).get("status") for rid in journeys}
        if (all(settled(j, statuses[rid]) for rid, j in journeys.items()) or time.monotonic() - started >= timeout_s
                or cut_short()):
            return statuses, time.monotonic() - started
        sleep(interval_s)


def _seconds(start: str, end: str) -> float:
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def lags(state: dict[str, dict[str, Any]], journeys: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """End-to-end lags of the load's returns, in seconds of business time (which runs at wall
    speed under load): requested -> RMA, -> credit memo, -> closed."""
    returns = {r["id"]: r for r in state["returns_portal"].get("returns", [])}
    rma_of: dict[str, str] = {}
    out: dict[str, list[float]] = {"rma": [], "credit_memo": [], "closed": []}
    for rma in state["erp"].get("return_authorizations", []):
        rid = rma.get("external_reference")
        if rid in journeys and rid in returns and rid not in rma_of.values():
            rma_of[rma["id"]] = rid
            out["rma"].append(_seconds(returns[rid]["requested_at"], rma["created_at"]))
    seen_memo: set[str] = set()
    for memo in state["erp"].get("credit_memos", []):
        rid = rma_of.get(memo["return_authorization_id"])
        if rid and rid not in seen_memo:
            seen_memo.add(rid)
            out["credit_memo"].append(_seconds(returns[rid]["requested_at"], memo["created_at"]))
    closed: dict[str, str] = {}
    for change in state["returns_portal"].get("history", []):
        if change["to"] == "closed" and change["return_id"] in journeys:
            closed.setdefault(change["return_id"], change["at"])
    out["closed"] = [_seconds(returns[rid]["requested_at"], at) for rid, at in closed.items() if rid in returns]
    return out


def record(scenario, master: MasterData, fakes: Fakes, journeys: dict[str, dict[str, Any]],
           statuses: dict[str, str | None], summary: dict[str, Any], deliveries: list[dict[str, Any]] = (), *,
           ack_p99_ms: float | None = None) -> tuple[RunRecord, dict[str, dict[str, Any]]]:
    """The oracle's record of the load run: expectations from the journeys, the fakes' state and
    journals, and the load's delivery attempts (status and open-loop latency from each attempt's
    intended send time), so the oracle decides acknowledgement latency too. ``ack_p99_ms``, the
    run's own p99 gate (``--sla-ack-ms p99=…``), replaces the scenario's in the record: the run is
    judged against one threshold."""
    state = {system: fakes.state(system) for system in fakes.urls}
    journals = {system: fakes.journal(system) for system in fakes.urls}
    expected = orjson.loads(orjson.dumps({rid: expectation(master, j, statuses.get(rid)) for rid, j in sorted(journeys.items())}))
    plan = scenario.model_dump(mode="json")
    if ack_p99_ms is not None:
        plan["slas"]["ack_latency_ms_p99"] = ack_p99_ms
    run = RunRecord(scenario=plan, expected=expected, state=state, journals=journals, summary=summary,
                    deliveries=orjson.loads(orjson.dumps(list(deliveries))))
    return run, state


def verdict(run: RunRecord | Path, sut: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    return reconcile(run, sut=sut, wall_seconds=round(wall_seconds, 1))
