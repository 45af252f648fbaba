"""``report.html``: one self-contained page a person reads after a run.

The verdict, a table of checks, each SLA's latency distribution against its threshold, the returns
by stage over simulated time, the faults injected, and a searchable table of violations with their
evidence. Everything is inline (CSS, JS, SVG drawn in Python): the page opens from a CI artifact
or a laptop with no network. Every string from the verdict is escaped, and a Content-Security-Policy
allows no script but the page's own (by hash), so a return id or message cannot inject markup.
"""

from __future__ import annotations

import base64
import hashlib
import math
from pathlib import Path

from simulators.report import svg
from simulators.report.svg import esc
from simulators.report.text import (
    STATUS_LABEL,
    check_status,
    describe_check,
    format_number,
    sla_summary,
    with_unit,
)

MAX_VIOLATIONS = 1000  # rows per check in the page; all of them stay in verdict.json
MAX_ROWS = 200  # rows of a table of the summary

CSS = """
:root{--fg:#1f2328;--muted:#656d76;--bg:#fff;--panel:#f6f8fa;--line:#d0d7de;--pass:#1a7f37;--fail:#cf222e;--unknown:#9a6700}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;padding:0 24px 48px;max-width:1200px}
h1{font-size:22px;margin:0}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:20px 0 4px}
.banner{margin:20px 0;padding:16px 20px;border-radius:8px;color:#fff;display:flex;gap:24px;align-items:center;flex-wrap:wrap}
.banner.pass{background:var(--pass)}.banner.fail{background:var(--fail)}
.banner .word{font-size:40px;font-weight:700;letter-spacing:2px}.banner .facts{flex:1;min-width:280px}
.banner .facts div{margin:2px 0}.chip{display:inline-block;padding:0 8px;border-radius:10px;background:rgba(0,0,0,.12);margin:1px 2px;font-family:ui-monospace,monospace;font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0}table.kv{width:auto;min-width:240px}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:700;padding:1px 8px;border-radius:4px;color:#fff;font-size:12px}
.status.pass{background:var(--pass)}.status.fail{background:var(--fail)}.status.error,.status.unknown{background:var(--unknown)}
.muted{color:var(--muted)}.bad{color:var(--fail);font-weight:600}.small{font-size:12px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
pre{background:var(--panel);padding:8px;overflow:auto;max-height:320px;white-space:pre-wrap;word-break:break-word}
details summary{cursor:pointer}a.filter{cursor:pointer;color:#0969da}
.plot{max-width:100%;height:auto;display:block}.plot text{font-size:11px;fill:var(--fg)}
.plot .grid{stroke:var(--line);stroke-width:.5}.plot .axis{stroke:var(--fg)}.plot .bar{fill:#4c8bf5}.plot .bar.late{fill:#e5534b}
.plot .threshold{stroke:var(--fail);stroke-dasharray:5 3;stroke-width:2;fill:var(--fail)}.plot .observed{stroke:var(--fg);stroke-width:2}
.plot text.threshold{stroke:none;fill:var(--fail);font-weight:600}.plot text.observed{stroke:none;font-weight:600}
.plot .area{stroke:#fff;stroke-width:.3}.plot .hover{fill:transparent}.plot .hover:hover{fill:rgba(0,0,0,.06)}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.sla{display:grid;grid-template-columns:minmax(0,1fr);gap:4px;margin-bottom:16px}
.barcell{width:40%}.hbar{height:10px;background:#e5534b;border-radius:2px}
input#q{width:100%;padding:8px 10px;font-size:14px;border:1px solid var(--line);border-radius:6px;margin:6px 0}
tr[hidden],tbody[hidden]{display:none}td.id{white-space:nowrap}footer{margin-top:40px;color:var(--muted);font-size:12px}
.scroll{overflow-x:auto;max-width:100%}details.group{margin:4px 0}details.group>summary{padding:3px 0}
table#violations{table-layout:fixed}table#violations td{overflow-wrap:anywhere}tr.evidence>td{background:var(--panel)}
table#violations td td,table#violations td th{overflow-wrap:normal;font-size:12px;padding:3px 6px}
"""

SCRIPT = """
(function(){
  var q=document.getElementById('q'), shown=document.getElementById('shown');
  if(!q) return;
  var rows=Array.prototype.slice.call(document.querySelectorAll('#violations > tbody'));
  var texts=rows.map(function(r){return r.textContent.toLowerCase();});
  function filter(){
    var words=q.value.toLowerCase().split(/\\s+/).filter(Boolean), n=0;
    rows.forEach(function(r,i){
      var hit=words.every(function(w){return texts[i].indexOf(w)>=0;});
      r.hidden=!hit; if(hit) n++;
    });
    shown.textContent=String(n);
  }
  q.addEventListener('input',filter);
  document.querySelectorAll('#violations details.ev').forEach(function(d){
    d.addEventListener('toggle',function(){d.closest('tbody').querySelector('tr.evidence').hidden=!d.open;});
  });
  document.querySelectorAll('a.filter').forEach(function(a){
    a.addEventListener('click',function(e){e.preventDefault();q.value=a.getAttribute('data-filter');filter();q.scrollIntoView();});
  });
  filter();
})();
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'"


def _num(value: object) -> str:
    return esc(format_number(value))


def _status(status: str) -> str:
    return f'<span class="status {status}">{STATUS_LABEL[status]}</span>'


def _banner(verdict: dict, checks: list[dict]) -> str:
    statuses = [check_status(c) for c in checks]
    ok = verdict.get("ok")
    if not isinstance(ok, bool):
        ok = "fail" not in statuses
    scenario, sut = verdict.get("scenario") or {}, verdict.get("sut") or {}
    tally = [f"{statuses.count('pass')} passed", f"{statuses.count('fail')} failed"]
    if unknown := statuses.count("unknown") + statuses.count("error"):
        tally.append(f"{unknown} unknown")
    scen = [f"<b>{esc(scenario.get('name', '?'))}</b>"]
    scen += [f"{label} {_num(scenario[key])}" for key, label in
             (("seed", "seed"), ("days", "days"), ("time_scale", "time scale")) if scenario.get(key) is not None]
    defects = sut.get("defects") or []
    defect_html = " ".join(f'<span class="chip">{esc(d)}</span>' for d in defects) or "none"
    run = []
    if verdict.get("started_at"):
        run.append(f"started {esc(verdict['started_at'])}")
    if verdict.get("wall_seconds") is not None:
        run.append(f"{_num(verdict['wall_seconds'])} s wall time")
    stopped, harness, time = verdict.get("stopped"), verdict.get("harness") or {}, verdict.get("time") or {}
    word = "STOPPED" if stopped else "PASS" if ok else "FAIL"
    warnings = []
    if stopped:
        warnings.append(f"<div><b>Stopped at {esc(stopped.get('at', '?'))}</b>: {esc(stopped.get('reason', ''))}</div>")
    if harness.get("behind"):
        warnings.append(f"<div><b>Harness behind</b>: {esc(harness.get('advice', ''))}</div>")
    for silence in verdict.get("layer_silences") or ():
        warnings.append(f"<div><b>Layer silent</b> for {_num(silence.get('seconds'))} s: {_num(silence.get('unanswered'))} deliveries "
                        f"unanswered ({esc(silence.get('error'))})</div>")
    clock = (f"<div>Clock: <b>{esc(time.get('clock', '?'))}</b> — {esc(time.get('sentence', ''))}; one wall second is "
             f"{esc(time.get('one_wall_second', '?'))}</div>") if time else ""
    if load := verdict.get("load") or {}:
        clock += (f"<div>Load on the layer: {_num(load.get('deliveries'))} deliveries, peak {_num(load.get('peak_per_second'))} a wall "
                  f"second (mean {_num(load.get('mean_per_second'))}), at most {_num(load.get('peak_in_flight'))} in flight</div>")
    return (f'<section class="banner {"pass" if ok else "fail"}" id="verdict"><div class="word">{word}</div>'
            f'<div class="facts">{"".join(warnings)}<div>Verdict: <b>{word}</b> — {len(checks)} checks: {", ".join(tally)}</div>'
            f'<div>Scenario: {" · ".join(scen)}</div>{clock}'
            f'<div>System under test: <b>{esc(sut.get("kind", "?"))}</b> <span class="mono">{esc(sut.get("url", ""))}</span>'
            f" · defects: {defect_html}</div>"
            f'<div class="small">{" · ".join(run)}</div></div></section>')


NEUTRAL_COUNTS = {"ok", "samples", "total", "checked", "expected", "observed"}


def _counts(counts: dict, status: str) -> str:
    """Counters, the ones that explain a failure in red (``ok``, ``samples``, ``*_percent`` never)."""
    parts = []
    for key, value in (counts or {}).items():
        explains = (status != "pass" and key not in NEUTRAL_COUNTS and not str(key).endswith("percent")
                    and isinstance(value, int | float) and value)
        cls = "bad" if explains else "muted" if not value else ""
        parts.append(f'<span class="{cls}">{esc(key)} {_num(value)}</span>')
    return " · ".join(parts)


def _checks_table(checks: list[dict]) -> str:
    rows = []
    for check in checks:
        status = check_status(check)
        name = check.get("name") or "(unnamed check)"
        violations = len(check.get("violations") or [])
        # A passing invariant's counts say it all; anything else gets its one-line story.
        detail = "" if status == "pass" and check.get("kind") != "sla" else esc(describe_check(check))
        if check.get("error"):
            detail += f'<details><summary class="small">traceback</summary><pre>{esc(check["error"])}</pre></details>'
        link = (f'<a class="filter small" href="#violations" data-filter="{esc(name)}">{violations} violation'
                f'{"s" if violations != 1 else ""}</a>') if violations else ""
        exposure = check.get("exposure") if isinstance(check.get("exposure"), dict) else {}
        exercised = "".join(f'<div class="{"small" if n else "small bad"}">{esc(k)}: {_num(n)}</div>' for k, n in exposure.items())
        rows.append(f'<tr><td><b class="mono">{esc(name)}</b><div class="small">{esc(check.get("title", ""))}</div>'
                    f'<div class="small muted">{esc(check.get("meaning", ""))}</div></td>'
                    f'<td>{esc(check.get("kind", ""))}</td><td>{_status(status)}</td>'
                    f"<td>{_counts(check.get('counts') or {}, status)}</td><td>{detail}<div>{link}</div></td><td>{exercised}</td></tr>")
    if not rows:
        return '<p class="muted">No checks in this verdict.</p>'
    return ("<table><thead><tr><th>Check</th><th>Kind</th><th>Result</th><th>Counts</th><th>Detail</th>"
            '<th>Exercised <span class="small muted">(chances a defect had to show; red: none)</span></th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _grid(title: str, rows: dict, note: str) -> str:
    """A table of counts, one row per step or event type, a column per fault; zeros in red."""
    rows = {k: v for k, v in (rows or {}).items() if isinstance(v, dict)}
    if not rows:
        return ""
    columns = list(dict.fromkeys(c for v in rows.values() for c in v))
    head = "".join(f"<th class=\"num\">{esc(c)}</th>" for c in columns)
    body = "".join(f"<tr><td class=\"mono\">{esc(name)}</td>"
                   + "".join('<td class="num muted" title="cannot happen to this step">n/a</td>' if c in v and v[c] is None else
                             f'<td class="num{"" if v.get(c) else " bad"}">{_num(v.get(c, 0))}</td>' for c in columns) + "</tr>"
                   for name, v in rows.items())
    return (f"<h3>{esc(title)}</h3><p class=\"small muted\">{esc(note)}</p>"
            f"<div class=\"scroll\"><table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _coverage_section(verdict: dict) -> str:
    cells = verdict.get("coverage") if isinstance(verdict.get("coverage"), dict) else {}
    if not cells:
        return ""
    behaviour = cells.get("behaviour") or {}
    return ('<h2 id="coverage">Coverage: what this run exercised</h2>'
            + _grid("The layer's calls × the fakes' faults", cells.get("api"),
                    "Calls the layer made of each kind, and how many met each fault. A zero is a fault this run never put to that step.")
            + _grid("Events × delivery faults", cells.get("events"), "Facts of each type that met each delivery fault.")
            + _grid("Customer and world behaviours", {"returns": behaviour}, "Returns that ended each way.")
            + (_grid("The message queue", {"layer's queue": cells["queue"]},
                     "Malformed messages the broker handed the layer: each must end in its dead-letter queue.")
               if isinstance(cells.get("queue"), dict) else "")
            + (_grid("Batch files", {"WMS exports": cells["files"]},
                     "Files the WMS exported to the SFTP server; each one cut short must be refused whole (moved to rejected).")
               if isinstance(cells.get("files"), dict) else "")
            + (_grid("The kill nemesis", {"layer": cells["nemesis"]}, "Times the layer was killed (SIGKILL) and started again; the aimed kill strikes the moment it has acknowledged a fact.")
               if isinstance(cells.get("nemesis"), dict) else ""))


def _sla_section(checks: list[dict]) -> str:
    parts = []
    for check in checks:
        if check.get("kind") != "sla":
            continue
        sla = check.get("sla") or {}
        samples = svg.numbers(sla.get("distribution"))
        stats = ""
        if samples:
            stats = " · ".join(f"{label} {esc(with_unit(value, sla.get('unit')))}" for label, value in (
                ("min", samples[0]), ("median", svg.quantile(samples, 0.5)),
                ("p99", svg.quantile(samples, 0.99)), ("max", samples[-1])))
            if sla.get("samples") is not None and sla["samples"] != len(samples):
                stats += f" · {len(samples)} of {_num(sla['samples'])} samples plotted"
        threshold, observed = (sla.get(key) if isinstance(sla.get(key), int | float) else None
                               for key in ("threshold", "observed"))
        plot = svg.histogram(sla.get("distribution"), threshold=threshold, observed=observed,
                             percentile=sla.get("percentile"), unit=str(sla.get("unit") or ""),
                             label=str(sla.get("metric") or check.get("name") or ""))
        parts.append(f'<div class="sla"><h3>{_status(check_status(check))} <span class="mono">{esc(check.get("name", ""))}</span>'
                     f' <span class="muted small">{esc(check.get("title", ""))}</span></h3>'
                     f"<div>{esc(sla_summary(check))}</div><div class=\"small muted\">{stats}</div>{plot}</div>")
    if not parts:
        return ""
    return "<h2>SLA latency distributions</h2>" + "".join(parts)


def _lag_section(verdict: dict) -> str:
    """Acknowledgement latency beside the harness's own lateness, over the run's wall time: a
    layer falling behind shows as a rising ack line, a harness falling behind as rising lag lines."""
    harness = verdict.get("harness") if isinstance(verdict.get("harness"), dict) else {}
    rows = [r for r in harness.get("series") or [] if isinstance(r, list) and len(r) >= 3]
    if not rows:
        return ""
    columns = [("webhook acknowledgement, slowest (ms)", "#4c8bf5", 3), ("harness event-loop stall (ms)", "#e5534b", 1),
               ("harness world lateness (ms)", "#fbc02d", 2)]
    series = [(name, color, [(r[0], r[i]) for r in rows if len(r) > i and isinstance(r[i], int | float)]) for name, color, i in columns]
    legend = "".join(f'<span><i style="background:{color}"></i>{esc(name)}</span>' for name, color, _ in columns)
    stall, late = harness.get("loop_stall_ms") or {}, harness.get("world_late_ms") or {}
    return ("<h2>Latency over the run (wall time)</h2>"
            f'<p class="small muted">Per wall second. The harness\'s event loop stalled p99 {_num(stall.get("p99"))} ms, '
            f'max {_num(stall.get("max"))} ms; its world ran late p99 {_num(late.get("p99"))} ms, max {_num(late.get("max"))} ms. '
            "A FAIL that the harness's own lateness could explain is reported UNKNOWN.</p>"
            + svg.lines(series, xlabel="wall seconds into the run", ylabel="ms", title="Latency over the run")
            + f'<div class="legend small">{legend}</div>')


def _timeline_section(verdict: dict) -> str:
    points = svg.timeline_points(verdict.get("timeline"))
    if not points:
        return ""
    stages = svg.ordered_stages({stage for _, s in points for stage in s})
    colors = svg.stage_colors(stages)
    head = ("<h2>Returns by stage over simulated time</h2>"
            '<p class="small muted">Stacked: finished returns at the bottom, returns still on their way on top '
            "(the height of those bands is the backlog). Hover for the counts of a day.</p>")
    if len(points) < 2:
        day, counts = points[0]
        cells = "".join(f"<tr><td>{esc(k)}</td><td class=\"num\">{_num(v)}</td></tr>" for k, v in counts.items())
        return head + f"<p>Day {_num(day)}:</p><table>{cells}</table>"
    legend = "".join(f'<span><i style="background:{colors[s]}"></i>{esc(s)}</span>' for s in reversed(stages))
    return head + svg.stacked_areas(points, stages, colors) + f'<div class="legend small">{legend}</div>'


def _flatten(value: object, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict):
        items: list[tuple[str, object]] = []
        for key, inner in value.items():
            items += _flatten(inner, f"{prefix} / {key}" if prefix else str(key))
        return items
    return [(prefix, value)]


def _faults_section(summary: dict) -> str:
    faults = summary.get("faults_injected")
    if faults is None:
        return ""
    if not isinstance(faults, dict):
        return "<h2>Faults injected</h2>" + _value(faults)
    items = _flatten(faults)
    if not items:
        return '<h2>Faults injected</h2><p class="muted">None.</p>'
    numbers = [v for _, v in items if isinstance(v, int | float) and not isinstance(v, bool)]
    top = max(numbers, default=0) or 1
    total = sum(numbers)
    rows = "".join(
        f'<tr><td class="mono">{esc(k)}</td><td class="num">{_num(v)}</td><td class="barcell">'
        + (f'<div class="hbar" style="width:{max(v / top * 100, 0.5):.1f}%"></div>'
           if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else "")
        + "</td></tr>" for k, v in items)
    return (f"<h2>Faults injected <span class=\"muted small\">({_num(total)} in all)</span></h2>"
            f"<table><thead><tr><th>Fault</th><th>Count</th><th></th></tr></thead><tbody>{rows}</tbody></table>")


def _value(value: object, depth: int = 0) -> str:
    """Any JSON value as escaped HTML: objects as key/value tables, lists of objects as tables."""
    if isinstance(value, dict):
        if not value:
            return '<span class="muted">none</span>'
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{_value(v, depth + 1)}</td></tr>" for k, v in list(value.items())[:MAX_ROWS])
        return f'<table class="kv">{rows}</table>'
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value) and depth < 3:
            keys = list(dict.fromkeys(k for v in value[:MAX_ROWS] for k in v))
            head = "".join(f"<th>{esc(k)}</th>" for k in keys)
            body = "".join("<tr>" + "".join(f"<td>{_value(v.get(k), depth + 1)}</td>" for k in keys) + "</tr>"
                           for v in value[:MAX_ROWS])
            more = f'<p class="muted small">... and {len(value) - MAX_ROWS} more</p>' if len(value) > MAX_ROWS else ""
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"
        return ", ".join(_value(v, depth + 1) for v in value[:MAX_ROWS]) or '<span class="muted">none</span>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _num(value)
    return esc("-" if value is None else value)


def _compact(value: object) -> object:
    """A summary value without its zeros and empties, a series of points named, not listed."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if not (v is None or v == 0 or v in ({}, [], ""))}
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return f"{len(value)} points"
    return value


def _gist(value: object) -> str:
    """One line for a folded summary entry: its first few counters, or how many entries it has."""
    if isinstance(value, dict):
        flat = [(k, v) for k, v in value.items() if not isinstance(v, dict | list)]
        line = " · ".join(f"{esc(k)} {_value(v)}" for k, v in flat[:6])
        more = len(value) - min(len(flat), 6)
        return line + (f" · {more} more" if more and line else f"{len(value)} entries" if not line else "")
    if isinstance(value, list):
        return f"{len(value)} entries"
    return _value(value)


def _summary_section(summary: dict) -> str:
    """The run's counters, zeros left out and each group folded to one line (verdict.json has all)."""
    rest = _compact({k: v for k, v in summary.items() if k != "faults_injected"})
    if not rest:
        return ""
    scalars = {k: v for k, v in rest.items() if not isinstance(v, dict | list)}
    nested = {k: v for k, v in rest.items() if isinstance(v, dict | list)}
    return ('<h2 id="summary">Summary</h2><p class="small muted">The run\'s counters; zeros are left out '
            "(verdict.json holds every one). Open a line for its details.</p>"
            + (_value(scalars) if scalars else "")
            + "".join(f'<details class="group"><summary><b>{esc(str(k).replace("_", " "))}</b> '
                      f'<span class="small muted">{_gist(v)}</span></summary><div class="scroll">{_value(v)}</div></details>'
                      for k, v in nested.items()))


def _evidence(evidence: object) -> tuple[str, str]:
    """A violation's evidence as (its one-line toggle, the full-width content the toggle opens)."""
    if not evidence:
        return '<span class="muted">-</span>', ""
    if not isinstance(evidence, dict):
        return _value(evidence), ""
    sizes = " · ".join(f"{esc(k)} {len(v) if isinstance(v, list | dict) else 1}" for k, v in evidence.items())
    parts = []
    for key, value in evidence.items():
        if key == "documents" and isinstance(value, list):
            body = " ".join(f'<span class="chip">{esc(d)}</span>' for d in value)
        elif key == "faults" and isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            body = "<ul>" + "".join(f"<li>{esc(f)}</li>" for f in value) + "</ul>"
        else:
            body = _value(value, 1)
        parts.append(f'<div><b class="small">{esc(key)}</b> {body}</div>')
    return (f'<details class="ev"><summary class="small">{sizes}</summary></details>',
            f'<div class="scroll">{"".join(parts)}</div>')


def _violations_section(checks: list[dict], max_violations: int) -> str:
    rows, total, dropped = [], 0, []
    for check in checks:
        violations = check.get("violations") or []
        found = max(len(violations), check.get("violations_found") or 0)
        total += found
        if found > min(len(violations), max_violations):
            dropped.append(f"{esc(check.get('name'))}: {found - min(len(violations), max_violations)}")
        for v in violations[:max_violations]:
            if not isinstance(v, dict):
                v = {"message": v}
            toggle, content = _evidence(v.get("evidence"))
            # One tbody a violation: its row, then its evidence across the whole table once opened.
            rows.append(f'<tbody><tr><td class="mono">{esc(check.get("name", ""))}</td><td>{esc(v.get("kind", ""))}</td>'
                        f'<td class="mono id">{esc(v.get("return_id", ""))}</td><td class="mono id">{esc(v.get("correlation_id", ""))}</td>'
                        f"<td>{esc(v.get('message', ''))}</td><td>{toggle}</td></tr>"
                        + (f'<tr class="evidence" hidden><td colspan="6">{content}</td></tr>' if content else "") + "</tbody>")
    note = ""
    if dropped:
        note = (f'<p class="small muted">Only the first violations of a check are listed (left out: '
                f"{'; '.join(dropped)}); the counts above hold them all.</p>")
    if not rows:
        return '<h2 id="violations">Violations</h2><p class="muted">None.</p>'
    return (f'<h2 id="violations">Violations <span class="muted small">(<span id="shown">{len(rows)}</span> shown of '
            f"{len(rows)})</span></h2>{note}"
            '<input id="q" type="search" placeholder="Filter: return id, check, kind, document, message... (all words must match)" '
            'aria-label="Filter violations" autocomplete="off">'
            '<div class="scroll"><table id="violations"><colgroup><col style="width:16%"><col style="width:8%">'
            '<col style="width:13%"><col style="width:13%"><col style="width:22%"><col style="width:28%"></colgroup>'
            "<thead><tr><th>Check</th><th>Kind</th><th>Return</th><th>Correlation id</th>"
            f"<th>Message</th><th>Evidence</th></tr></thead>{''.join(rows)}</table></div>")


def render_html(verdict: dict, *, max_violations: int = MAX_VIOLATIONS) -> str:
    """The report page for a verdict, as a string (see :func:`write_html`)."""
    checks = [c for c in verdict.get("checks") or [] if isinstance(c, dict)]
    summary = verdict.get("summary") if isinstance(verdict.get("summary"), dict) else {}
    scenario = (verdict.get("scenario") or {}).get("name", "run")
    ok = verdict.get("ok") if isinstance(verdict.get("ok"), bool) else all(c.get("valid") is not False for c in checks)
    wall = verdict.get("wall_seconds")
    wall_note = f" in {format_number(wall)} s" if isinstance(wall, int | float) and math.isfinite(wall) else ""
    body = "".join([
        f"<h1>returns-harness report: {esc(scenario)}</h1>",
        _banner(verdict, checks),
        "<h2>Checks</h2>", _checks_table(checks),
        _sla_section(checks),
        _timeline_section(verdict),
        _lag_section(verdict),
        _coverage_section(verdict),
        _faults_section(summary),
        _violations_section(checks, max_violations),
        _summary_section(summary),
        f"<footer>{esc(verdict.get('schema', ''))} · run{esc(wall_note)} · written by returns-harness</footer>",
    ])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>{'PASS' if ok else 'FAIL'}: {esc(scenario)} · returns-harness</title><style>{CSS}</style></head>"
            f"<body>{body}<script>{SCRIPT}</script></body></html>\n")


def write_html(verdict: dict, path: Path, *, max_violations: int = MAX_VIOLATIONS) -> Path:
    """Write the self-contained report page to ``path`` (its directory must exist); returns ``path``."""
    path = Path(path)
    path.write_text(render_html(verdict, max_violations=max_violations), encoding="utf-8")
    return path
