"""A failed Then step as a person reads it: the check, why it matters, and each violation with
its evidence (faults injected, deliveries, the integration layer's writes)."""

from __future__ import annotations

from typing import Any

SHOWN = 5  # violations spelled out; the rest are counted (the saved run has them all)


def _evidence(evidence: dict[str, Any]) -> list[str]:
    lines = []
    if evidence.get("faults"):
        lines.append("faults injected: " + "; ".join(evidence["faults"]))
    if evidence.get("documents"):
        lines.append("documents: " + ", ".join(evidence["documents"]))
    for d in evidence.get("deliveries", [])[:8]:
        fault = f" [{d['fault']}]" if d.get("fault") else ""
        lines.append(f"delivered {d['event_id']} {d['event_type']} attempt {d['attempt']} -> {d['status']}{fault}")
    for w in evidence.get("journal", [])[:8]:
        extra = ", ".join(f"{k} {w[k]}" for k in ("fault", "replayed", "lost") if w.get(k))
        key = f" key {w['idempotency_key']}" if w.get("idempotency_key") else " no Idempotency-Key"
        lines.append(f"wrote {w['system']} {w['method']} {w['path']} -> {w['status']} at {w['at']}{key}{' (' + extra + ')' if extra else ''}")
    return lines


def check_failure(check: dict[str, Any], where: str) -> str:
    """Why a check failed (or could decide nothing), with its violations and their evidence."""
    state = {False: "FAILED", None: "decided nothing (UNKNOWN)"}[check["valid"]]
    counts = ", ".join(f"{k} {v}" for k, v in check["counts"].items()) or "nothing counted"
    lines = [f"check {check['name']} {state}: {check['title']}", f"  why it matters: {check['meaning']}", f"  counts: {counts}"]
    if check["valid"] is None:
        lines.append("  no return in this run reached what the check is about; is the world set up to exercise it?")
    if check.get("error"):
        lines.append("  the checker raised:\n" + check["error"])
    for violation in check["violations"][:SHOWN]:
        lines.append(f"  {violation['return_id']} {violation['kind']}: {violation['message']}")
        lines += [f"      {line}" for line in _evidence(violation.get("evidence") or {})]
    if len(check["violations"]) > SHOWN:
        lines.append(f"  ... and {len(check['violations']) - SHOWN} more violation(s)")
    lines.append(f"  {where}")
    return "\n".join(lines)
