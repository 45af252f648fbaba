"""The reports written from a verdict: ``verdict.json``, ``junit.xml`` and ``report.html``.

A verdict is a plain JSON-able dict with a stable schema (``SCHEMA``, described in issue 5 and in
the oracle): whether the run holds, the scenario and system under test, every check with its
result, counts and violations (with evidence), SLA distributions, a summary and a timeline of
returns by stage. The reports only read it, so ``returns-harness reconcile`` can rewrite them from
a saved ``verdict.json``.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from simulators.report.html import render_html, write_html
from simulators.report.junit import build_junit, write_junit

SCHEMA = "returns-harness/verdict/1"
FILES = {"verdict": "verdict.json", "junit": "junit.xml", "html": "report.html"}

__all__ = ["FILES", "SCHEMA", "build_junit", "read_verdict", "render_html", "write_html", "write_junit", "write_reports"]


def write_reports(verdict: dict, report_dir: Path) -> dict[str, Path]:
    """Write ``verdict.json`` (indented, sorted keys), ``junit.xml`` and ``report.html`` into
    ``report_dir`` (created if needed); returns their paths by kind (``verdict``, ``junit``, ``html``).

    Raises ``ValueError`` (before writing anything) when the verdict names another schema.
    """
    if verdict.get("schema") != SCHEMA:
        raise ValueError(f"verdict: field 'schema' is {verdict.get('schema')!r}, expected {SCHEMA!r}")
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: report_dir / name for kind, name in FILES.items()}
    paths["verdict"].write_bytes(orjson.dumps(
        verdict, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE))
    write_junit(verdict, paths["junit"])
    write_html(verdict, paths["html"])
    return paths


def read_verdict(path: Path) -> dict:
    """A saved ``verdict.json`` (or a directory holding one), checked for its schema."""
    path = Path(path)
    if path.is_dir():
        path = path / FILES["verdict"]
    verdict = orjson.loads(path.read_bytes())
    if not isinstance(verdict, dict) or verdict.get("schema") != SCHEMA:
        found = verdict.get("schema") if isinstance(verdict, dict) else type(verdict).__name__
        raise ValueError(f"{path}: field 'schema' is {found!r}, expected {SCHEMA!r}")
    return verdict
