"""Words and numbers shared by the reports: a check's status, its one-line summary, a violation."""

from __future__ import annotations

import math

STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "error": "UNKNOWN", "unknown": "UNKNOWN"}


def check_status(check: dict) -> str:
    """``pass``, ``fail``, ``error`` (unknown: its checker raised) or ``unknown`` (could not decide)."""
    valid = check.get("valid")
    if valid is True:
        return "pass"
    if valid is False:
        return "fail"
    return "error" if check.get("error") else "unknown"


def format_number(value: object) -> str:
    """A count as it is, a measure with as many decimals as it deserves."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    if isinstance(value, int) or value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if not math.isfinite(value):
        return str(value)
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 0.1 else 4
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text  # 179.6 is "180", never "18"


def with_unit(value: object, unit: object) -> str:
    return f"{format_number(value)} {unit}" if unit else format_number(value)


def sla_summary(check: dict) -> str:
    """``p95 request_to_rma_hours = 1.7 hours (threshold 4 hours, 41 samples)``."""
    sla = check.get("sla") or {}
    unit = sla.get("unit")
    observed = sla.get("observed")
    relation = "" if observed is None or sla.get("threshold") is None else (" > " if check.get("valid") is False else " <= ")
    head = f"p{format_number(sla.get('percentile'))} {sla.get('metric') or check.get('name')}"
    if observed is None:
        return f"{head}: not measured (threshold {with_unit(sla.get('threshold'), unit)}, {format_number(sla.get('samples') or 0)} samples)"
    clock = f", clock {sla['clock']}" if sla.get("clock") else ""
    return (f"{head} = {with_unit(observed, unit)}{relation or ' vs '}threshold {with_unit(sla.get('threshold'), unit)}"
            f" ({format_number(sla.get('samples'))} samples{clock})")


def counts_summary(counts: dict, *, only_problems: bool = False) -> str:
    items = [(k, v) for k, v in (counts or {}).items() if not (only_problems and (k == "ok" or not v))]
    return ", ".join(f"{k} {format_number(v)}" for k, v in items)


def describe_check(check: dict) -> str:
    """One line saying how a check came out, for a failure message or a table cell."""
    status = check_status(check)
    if status == "error":
        lines = [line for line in str(check["error"]).strip().splitlines() if line.strip()]
        return f"checker raised: {lines[-1].strip() if lines else 'unknown error'}"
    if check.get("kind") == "sla" and check.get("sla"):
        text = sla_summary(check)
    elif status == "fail":
        text = counts_summary(check.get("counts") or {}, only_problems=True) or "violated"
        if ok := (check.get("counts") or {}).get("ok"):
            text += f" (ok {format_number(ok)})"
        if not (check.get("counts") or {}) and check.get("violations"):
            text = f"{len(check['violations'])} violations"
    else:
        text = counts_summary(check.get("counts") or {})
    if status == "unknown":
        why = check.get("reason")
        return f"could not decide{': ' + text if text else ''}{' (' + why + ')' if why else ''}"
    return text or status


def violation_line(violation: dict) -> str:
    """``RET-000012 [duplicated] 2 RMAs: RMA-000012, RMA-000013``."""
    who = violation.get("return_id") or violation.get("correlation_id") or "-"
    kind = f" [{violation['kind']}]" if violation.get("kind") else ""
    corr = violation.get("correlation_id")
    corr_note = f" (correlation {corr})" if corr and corr != who else ""
    return f"{who}{corr_note}{kind} {violation.get('message') or ''}".rstrip()
