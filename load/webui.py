"""A "returns-harness" tab in Locust's web UI: after a test, its gates and reconciliation.

Locust's UI renders an extended tab from ``template_args`` (its title and table columns) and
fills it from ``extended_stats`` in each ``/stats/requests`` answer. The UI polls that only
while a test runs; the gates are checked after it stops, so the tab asks for a reload then.
"""

from __future__ import annotations

import json
from typing import Any

from load import gates as gate_rules

KEY = "returnsharness"  # one word: the UI camel-cases table keys
COLUMNS = [{"key": "item", "title": "Gate or check"}, {"key": "result", "title": "Result"},
           {"key": "detail", "title": "Detail"}]


def rows(side) -> list[dict[str, str]]:
    """What the tab shows now: the last test's gates and checks, or why there are none yet."""
    if side.finishing:
        return [{"item": "settling and reconciling", "result": "…",
                 "detail": f"up to {side.options.rh_settle:g} s after the stop; reload this page for the gates"}]
    if side.last is None:
        return [{"item": "gates", "result": "-", "detail": "checked when a test stops (reload this page then)"}]
    report, out = side.last["report"], []
    for gate in side.last["gates"]:
        result = "no data" if gate["passed"] is None else "PASS" if gate["passed"] else "FAIL"
        out.append({"item": f"gate {gate['gate']}", "result": result, "detail": gate_rules.describe(gate)})
    for name, valid in (report.get("checks") or {}).items():
        out.append({"item": f"check {name}", "result": {True: "PASS", False: "FAIL"}.get(valid, "UNKNOWN"),
                    "detail": "the oracle's verdict on the load's returns (verdict.json)"})
    stages = " · ".join(f"{k} {v}" for k, v in sorted(report.get("stages", {}).items(), key=lambda kv: -kv[1]))
    cut = " (settling cut short)" if report.get("settle_cut_short") else ""
    out.append({"item": "returns", "result": str(report.get("returns", 0)), "detail": (stages or "none") + cut})
    return out


def install(environment, side) -> None:
    """Add the tab to a master's (or single process's) web UI, if it has one."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return
    web_ui.template_args["extended_tabs"] = [{"title": "returns-harness", "key": KEY}]
    web_ui.template_args["extended_tables"] = [{"key": KEY, "structure": COLUMNS}]

    @web_ui.app.after_request
    def _with_gates(response):
        from flask import request  # Locust's web UI is Flask; only imported where it runs

        if request.path.rstrip("/").endswith("/stats/requests") and response.is_json:
            body: dict[str, Any] = response.get_json()
            body["extended_stats"] = [*body.get("extended_stats", []), {"key": KEY, "data": rows(side)}]
            response.set_data(json.dumps(body))
        return response
