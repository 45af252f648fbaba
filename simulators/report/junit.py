"""``junit.xml``: one test case per invariant and SLA, for CI systems.

The layout is the one every common parser reads (Jenkins, GitLab, GitHub Actions reporters,
Azure DevOps, pytest's own): ``<testsuites>`` around one ``<testsuite name="returns-harness">``
with ``tests``/``failures``/``errors``/``skipped`` counts, one ``<testcase classname=KIND
name=CHECK>`` per check, and in it ``<failure>`` (the check does not hold), ``<error>`` (its
checker raised) or ``<skipped>`` (it could not decide).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from simulators.report.text import (
    check_status,
    describe_check,
    format_number,
    violation_line,
)

SUITE = "returns-harness"
MAX_VIOLATIONS = 20  # listed in a failure's text; the rest are counted ("... and 12 more")

# Characters XML 1.0 cannot carry at all (a NUL in a traceback would make the file unreadable).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(value: object) -> str:
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return _NOT_XML.sub("\ufffd", text)


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _clean(text)
    return el


def _timestamp(started_at: object) -> str | None:
    """ISO 8601 without a zone, in UTC: the form the JUnit schema (and Jenkins) expects."""
    if not isinstance(started_at, str) or not started_at:
        return None
    try:
        moment = datetime.fromisoformat(started_at)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def _properties(verdict: dict) -> list[tuple[str, object]]:
    scenario = verdict.get("scenario") or {}
    sut = verdict.get("sut") or {}
    props: list[tuple[str, object]] = [("schema", verdict.get("schema"))]
    props += [(f"scenario.{key}", scenario.get(key)) for key in ("name", "seed", "time_scale", "days")]
    props += [("sut.kind", sut.get("kind")), ("sut.url", sut.get("url")),
              ("sut.defects", ",".join(map(str, sut.get("defects") or [])))]
    props += [("ok", verdict.get("ok")), ("started_at", verdict.get("started_at")),
              ("wall_seconds", verdict.get("wall_seconds"))]
    return [(name, value) for name, value in props if value not in (None, "")]


def _violations_text(check: dict) -> str:
    violations = check.get("violations") or []
    lines = [violation_line(v) for v in violations[:MAX_VIOLATIONS]]
    found = max(len(violations), check.get("violations_found") or 0)
    if found > MAX_VIOLATIONS:
        lines.append(f"... and {found - MAX_VIOLATIONS} more (verdict.json lists up to 1,000 per check, with evidence)")
    return "\n".join(lines)


def _system_out(check: dict) -> str:
    lines = []
    if check.get("title"):
        lines.append(str(check["title"]))
    if check.get("meaning"):
        lines.append(f"If it fails: {check['meaning']}")
    counts = check.get("counts") or {}
    if counts:
        lines.append("counts: " + ", ".join(f"{k}={format_number(v)}" for k, v in counts.items()))
    return "\n".join(lines)


def build_junit(verdict: dict) -> ET.ElementTree:
    """The JUnit document for a verdict (see :func:`write_junit`)."""
    checks = verdict.get("checks") or []
    statuses = [check_status(c) for c in checks]
    counts = {
        "tests": len(checks),
        "failures": statuses.count("fail"),
        "errors": statuses.count("error"),
        "skipped": statuses.count("unknown"),
    }
    wall = verdict.get("wall_seconds")
    time = f"{float(wall):.3f}" if isinstance(wall, int | float) else "0"
    root = ET.Element("testsuites", {"name": SUITE, **{k: str(v) for k, v in counts.items()}, "time": time})
    suite_attrs: dict[str, object] = {"name": SUITE, **counts, "time": time}
    if (stamp := _timestamp(verdict.get("started_at"))) is not None:
        suite_attrs["timestamp"] = stamp
    suite = _element(root, "testsuite", **suite_attrs)
    props = _element(suite, "properties")
    for name, value in _properties(verdict):
        _element(props, "property", name=name, value=value)

    for check, status in zip(checks, statuses):
        kind = check.get("kind") or "invariant"
        case = _element(suite, "testcase", classname=kind, name=check.get("name") or "(unnamed check)", time="0")
        summary = describe_check(check)
        if status == "fail":
            text = _violations_text(check)
            if check.get("error"):
                text = f"{text}\n\n{check['error']}".strip()
            _element(case, "failure", text or None, message=summary, type=f"{kind}-violated")
        elif status == "error":
            _element(case, "error", check.get("error"), message=summary, type="checker-raised")
        elif status == "unknown":
            _element(case, "skipped", message=summary)
        if out := _system_out(check):
            _element(case, "system-out", out)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(verdict: dict, path: Path) -> Path:
    """Write the verdict as JUnit XML to ``path`` (its directory must exist); returns ``path``."""
    path = Path(path)
    build_junit(verdict).write(path, encoding="utf-8", xml_declaration=True)
    return path
