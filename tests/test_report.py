"""The reports written from a verdict: verdict.json, junit.xml and report.html.

The sample verdict (tests/data/verdict-sample.json) is a chaos run against the reference with
``no-dedupe``: one invariant fails, one passes, one checker raised, one could not decide, and of
two SLAs one fails. The last tests open the page in headless Chromium (skipped when there is none:
``apt-get install -y chromium``) over the DevTools protocol on a pipe, with no extra dependency.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from chromium import CHROMIUM_NAMES, Chromium, find_chromium  # tests/chromium.py
from simulators.report import (
    SCHEMA,
    read_verdict,
    render_html,
    write_html,
    write_junit,
    write_reports,
)

SAMPLE = Path(__file__).parent / "data" / "verdict-sample.json"
CHECK_NAMES = ["one-rma-per-approved-return", "one-credit-memo-per-refunded-return", "inventory-matches-dispositions",
               "no-refund-before-inspection", "request-to-rma", "inspection-to-credit-memo"]
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def verdict() -> dict:
    return json.loads(SAMPLE.read_text())


def check(verdict: dict, name: str) -> dict:
    return next(c for c in verdict["checks"] if c["name"] == name)


def poisoned(verdict: dict) -> dict:
    """The sample with markup in every kind of string a verdict carries."""
    v = copy.deepcopy(verdict)
    rma = check(v, "one-rma-per-approved-return")
    rma["violations"][0]["message"] = EVIL
    rma["violations"][1]["return_id"] = 'RET-"><img src=x onerror=alert(2)>'
    rma["violations"][1]["evidence"]["documents"].append("</td></tr></table><script>alert(3)</script>")
    rma["violations"][1]["evidence"]["journal"][0]["path"] = "/x<svg onload=alert(4)>"
    rma["title"] = "<iframe src=javascript:alert(5)>"
    rma["counts"]["<b>bold</b>"] = 1
    check(v, "inventory-matches-dispositions")["error"] = "KeyError: '</pre><script>alert(6)</script>'"
    check(v, "request-to-rma")["sla"]["unit"] = "h<script>alert(7)</script>"
    v["scenario"]["name"] = "chaos</title><script>alert(8)</script>"
    v["sut"]["defects"].append('"><script>alert(9)</script>')
    v["summary"]["faults_injected"]["<img src=x onerror=alert(10)>"] = 1
    v["summary"]["<style>body{display:none}</style>"] = {"<a href=x>": "<b>"}
    v["timeline"][-1]["stages"]["<script>alert(11)</script>"] = 1
    return v


# --- junit.xml ---------------------------------------------------------------------------------


def test_junit_has_one_case_per_check_and_right_counts(verdict, tmp_path):
    path = write_junit(verdict, tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "returns-harness"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == CHECK_NAMES
    assert [c.get("classname") for c in cases] == ["invariant"] * 4 + ["sla"] * 2
    # The counts say what the elements say (CI systems trust the attributes).
    expected = {"tests": 6, "failures": 2, "errors": 1, "skipped": 1}
    for element in (root, suite):
        assert {k: int(element.get(k)) for k in expected} == expected
    assert len(suite.findall("testcase/failure")) == 2
    assert len(suite.findall("testcase/error")) == 1
    assert len(suite.findall("testcase/skipped")) == 1
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["scenario.name"] == "chaos" and props["scenario.seed"] == "666"
    assert props["sut.defects"] == "no-dedupe" and props["ok"] == "false"
    assert suite.get("timestamp") == "2026-11-24T21:00:00"


def test_junit_says_why_each_check_did_not_pass(verdict, tmp_path):
    suite = ET.parse(write_junit(verdict, tmp_path / "junit.xml")).getroot().find("testsuite")
    case = {c.get("name"): c for c in suite.findall("testcase")}

    failure = case["one-rma-per-approved-return"].find("failure")
    assert "duplicated 2" in failure.get("message")
    assert "RET-000012 [duplicated] 2 RMAs: RMA-000012, RMA-000013" in failure.text
    assert "RET-000031" in failure.text

    late = case["inspection-to-credit-memo"].find("failure")
    assert late.get("message") == "p95 inspection_to_credit_memo_hours = 52.5 hours > threshold 24 hours (53 samples)"
    assert late.text.count("[late]") == 3

    error = case["inventory-matches-dispositions"].find("error")
    assert error.get("message") == "checker raised: KeyError: 'RCPT-000044'"
    assert "Traceback (most recent call last)" in error.text

    assert "could not decide" in case["no-refund-before-inspection"].find("skipped").get("message")
    for name in ("one-credit-memo-per-refunded-return", "request-to-rma"):
        assert [child.tag for child in case[name]] == ["system-out"]


def test_junit_lists_twenty_violations_and_survives_any_text(verdict, tmp_path):
    rma = check(verdict, "one-rma-per-approved-return")
    rma["violations"] = [dict(rma["violations"][0], return_id=f"RET-{n:06d}") for n in range(25)]
    rma["violations"][0]["message"] = "NUL\x00 ESC\x1b ]]> <tag> & \"quoted\" \ud800"
    rma["name"] = "name with <markup> & \"quotes\""
    suite = ET.parse(write_junit(verdict, tmp_path / "junit.xml")).getroot().find("testsuite")
    failure = suite.find("testcase/failure")
    lines = failure.text.splitlines()
    assert len(lines) == 21 and lines[-1].startswith("... and 5 more")
    assert "]]> <tag> & \"quoted\"" in lines[0]
    assert suite.find("testcase").get("name") == "name with <markup> & \"quotes\""


# --- report.html -------------------------------------------------------------------------------


class Tags(HTMLParser):
    """Every element and attribute of a page, to see what markup it really contains."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs


def test_html_shows_verdict_checks_plots_and_violations(verdict, tmp_path):
    html = write_html(verdict, tmp_path / "report.html").read_text()
    assert "<title>FAIL: chaos" in html and '<div class="word">FAIL</div>' in html
    assert "no-dedupe" in html and "http://127.0.0.1:8200" in html
    for name in CHECK_NAMES:
        assert name in html
    for status in ("PASS", "FAIL", "UNKNOWN"):
        assert f">{status}</span>" in html
    assert "RET-000012" in html and "RMA-000013" in html and "duplicate evt_000045 return.created" in html
    assert "KeyError: &#x27;RCPT-000044&#x27;" in html  # the checker's traceback
    assert html.count('<line class="threshold"') == 2  # one histogram per SLA, threshold marked
    assert "threshold 24 hours" in html and "p95 52.5 hours" in html
    assert "<title>Returns by stage over simulated days</title>" in html and "stalled:awaiting-refund" in html
    assert "erp 429 rate limit" in html and "(82 in all)" in html
    assert 'id="q"' in html  # the violations' search box
    assert "http://" not in html.replace("http://127.0.0.1:8200", "").replace("http://www.w3.org/2000/svg", "")
    assert not any(tag in html for tag in ("<link rel=\"stylesheet\"", "src=\"http", "@import"))


def test_numbers_keep_their_zeros():
    from simulators.report.text import format_number

    assert [format_number(v) for v in (179.604, 100.4, 1000.2, 12.5, 0.0031, 3, 2500.0)] == ["180", "100", "1,000", "12.5", "0.0031", "3", "2,500"]


def test_html_says_when_the_run_was_stopped_the_harness_fell_behind_and_which_clock(verdict, tmp_path):
    verdict["stopped"] = {"at": "2026-12-27T10:00:00+00:00", "reason": "the integration layer died: killed by SIGKILL (signal 9)"}
    verdict["time"] = {"clock": "wall", "sentence": "the layer's own time at face value", "one_wall_second": "15 business hours"}
    verdict["load"] = {"deliveries": 1234, "peak_per_second": 56, "mean_per_second": 7.5, "peak_in_flight": 9}
    verdict["harness"] = {"loop_stall_ms": {"p99": 250.0, "max": 900.0}, "world_late_ms": {"p99": 120.0, "max": 400.0},
                          "behind": True, "advice": "the harness fell behind on this machine: lower --time-scale",
                          "series": [[0, 1.0, 2.0, 30.0], [1, 250.0, 120.0, 700.0], [2, 5.0, 1.0, None]]}
    html = write_html(verdict, tmp_path / "report.html").read_text()
    assert '<div class="word">STOPPED</div>' in html and "killed by SIGKILL (signal 9)" in html
    assert "Harness behind" in html and "lower --time-scale" in html
    assert "Clock: <b>wall</b>" in html and "15 business hours" in html
    assert "1,234 deliveries, peak 56 a wall second" in html and "at most 9 in flight" in html
    assert "<title>Latency over the run</title>" in html and html.count("<polyline") == 3
    assert "stalled p99 250 ms, max 900 ms" in html


def test_html_escapes_every_string_from_the_verdict(verdict, tmp_path):
    html = render_html(poisoned(verdict))
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = Tags()
    page.feed(html)
    assert page.tags.count("script") == 1  # the page's own filter script, nothing else
    assert page.tags.count("style") == 1 and not {"img", "iframe"} & set(page.tags)
    assert not [name for name, _ in page.attrs if name.startswith("on")]
    assert not [value for _, value in page.attrs if "javascript:" in (value or "")]
    assert "&lt;b&gt;bold&lt;/b&gt; 1" in html and "&lt;script&gt;alert(11)&lt;/script&gt;" in html


def test_html_stays_small_with_big_distributions_and_many_violations(verdict):
    small = len(render_html(verdict))
    big = copy.deepcopy(verdict)
    sla = check(big, "request-to-rma")["sla"]
    sla["distribution"] = [0.1 + (n % 997) / 150 for n in range(10_000)] + [480.0]  # and one huge outlier
    sla["samples"] = 10_001
    assert len(render_html(big)) - small < 10_000  # bins are drawn, not samples
    rma = check(big, "one-rma-per-approved-return")
    rma["violations"] = [dict(rma["violations"][0], return_id=f"RET-{n:07d}") for n in range(100_000)]
    html = render_html(big, max_violations=500)
    assert "RET-0000499" in html and "RET-0000500" not in html
    assert "one-rma-per-approved-return: 99500" in html
    assert "&gt;" in html and "(up to 480" in html  # the outlier is folded into an overflow bar


def test_summary_leaves_zeros_out_and_folds_each_group_to_a_line():
    summary = {"returns": 12, "deliveries": {"delivered": 5, "failed": 0, "by_type": {"x": {"retried": 0}}},
               "harness": {"series": [[n, 1.0, 2.0] for n in range(40)], "loop_stall_ms": {"p99": 3.5}}}
    html = render_html({"schema": SCHEMA, "ok": True, "checks": [], "summary": summary})
    part = html[html.index('id="summary"'):]
    assert "<summary><b>deliveries</b>" in part and "delivered 5" in part
    assert "failed" not in part and "by_type" not in part and "retried" not in part  # zeros, and groups of zeros
    assert "40 points" in part and "[0," not in part  # a series is named, not listed


def test_coverage_shows_the_queue_when_facts_went_through_one(verdict):
    verdict["coverage"] = {"queue": {"poison messages": 0}}
    html = render_html(verdict)
    part = html[html.index('id="coverage"'):]
    assert "The message queue" in part and "poison messages" in part and 'class="num bad">0<' in part


def test_a_folded_tail_is_red_only_where_it_is_over_the_threshold():
    from simulators.report.svg import histogram

    body = [float(n % 50) for n in range(1000)]
    within = histogram(body + [900.0, 950.0], threshold=1000.0, observed=49.0, percentile=99, unit="ms")
    assert "within the threshold: 2" in within and "over the threshold" not in within
    both = histogram(body + [300.0, 2000.0, 3000.0], threshold=1000.0, observed=49.0, percentile=99, unit="ms")
    assert "within the threshold: 1" in both and "over the threshold: 2" in both
    assert within.count('class="bar late"') == 0  # nothing in the body is late either


def test_html_points_at_a_threshold_far_above_the_data(verdict):
    sla = check(verdict, "request-to-rma")["sla"]
    sla["threshold"] = 400.0  # a hundred times the data: drawing it would squash the bars into one
    html = render_html(verdict)
    assert html.count('<line class="threshold"') == 1 and "threshold 400 hours (off the scale)" in html


def test_html_renders_a_bare_verdict():
    html = render_html({"schema": SCHEMA, "ok": True, "checks": []})
    assert "<title>PASS" in html and "No checks in this verdict." in html and "Violations" in html


# --- write_reports -----------------------------------------------------------------------------


def test_write_reports_writes_all_three(verdict, tmp_path):
    paths = write_reports(verdict, tmp_path / "runs" / "chaos")
    assert {k: p.name for k, p in paths.items()} == {"verdict": "verdict.json", "junit": "junit.xml", "html": "report.html"}
    assert all(p.is_file() and p.parent == tmp_path / "runs" / "chaos" for p in paths.values())
    text = paths["verdict"].read_text()
    assert orjson.loads(text) == verdict and read_verdict(tmp_path / "runs" / "chaos") == verdict
    assert text.startswith('{\n  "checks": [\n    {\n      "counts"')  # indented, keys sorted
    ET.parse(paths["junit"])


def test_write_reports_refuses_another_schema(verdict, tmp_path):
    verdict["schema"] = "returns-harness/verdict/0"
    with pytest.raises(ValueError, match="schema"):
        write_reports(verdict, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- headless Chromium -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium found (looked for $CHROMIUM, then " + ", ".join(CHROMIUM_NAMES)
                    + " on the PATH); on Debian or Ubuntu: apt-get install -y chromium")
    browser = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()


def test_report_renders_in_chromium_without_console_errors(chromium, verdict, tmp_path):
    page = write_reports(verdict, tmp_path)["html"]
    tab = chromium.open(page.as_uri())
    assert chromium.problems(tab) == []
    assert chromium.evaluate(tab, "document.title").startswith("FAIL: chaos")
    text = chromium.evaluate(tab, "document.body.innerText")
    assert "Verdict: FAIL" in text and "no-dedupe" in text
    for name in CHECK_NAMES:
        assert name in text
    assert chromium.evaluate(tab, "document.querySelectorAll('svg.plot').length") == 3
    assert chromium.evaluate(tab, "document.querySelector('svg.plot').getBoundingClientRect().height") > 100
    visible = """(q => { const box = document.getElementById('q'); box.value = q; box.dispatchEvent(new Event('input'));
        return [document.querySelectorAll('#violations > tbody:not([hidden])').length,
                document.getElementById('shown').textContent]; })"""
    assert chromium.evaluate(tab, visible + "('')") == [5, "5"]
    assert chromium.evaluate(tab, visible + "('RET-000012')") == [1, "1"]
    assert chromium.evaluate(tab, visible + "('credit-memo LATE')") == [3, "3"]
    assert chromium.evaluate(tab, visible + "('RMA-000034')") == [1, "1"]  # evidence is searched too
    assert chromium.problems(tab) == []


def test_report_fits_the_window_and_opens_evidence_across_it(chromium, verdict, tmp_path):
    page = write_reports(verdict, tmp_path)["html"]
    tab = chromium.open(page.as_uri())
    chromium.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=tab)
    width = chromium.evaluate(tab, "document.documentElement.clientWidth")
    assert chromium.evaluate(tab, "document.documentElement.scrollWidth") <= width  # nothing pushes the page sideways
    hidden = "document.querySelector('#violations tr.evidence').hidden"
    assert chromium.evaluate(tab, hidden) is True
    chromium.evaluate(tab, "document.querySelector('#violations details.ev').open = true; "
                           "new Promise(done => setTimeout(done, 50))")
    assert chromium.evaluate(tab, hidden) is False
    # The evidence spans the table: its last column (the idempotency key) is on screen.
    right = chromium.evaluate(tab, "document.querySelector('#violations tr.evidence th:last-child').getBoundingClientRect().right")
    assert 0 < right <= width
    shot = chromium.screenshot(tab, tmp_path / "report.png")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
    assert chromium.problems(tab) == []


def test_injected_markup_stays_text_in_chromium(chromium, verdict, tmp_path):
    page = write_html(poisoned(verdict), tmp_path / "report.html")
    tab = chromium.open(page.as_uri())
    assert chromium.problems(tab) == []  # nothing ran, so the page's CSP had nothing to block either
    assert chromium.evaluate(tab, "document.querySelectorAll('script, img, iframe, style').length") == 2
    assert EVIL in chromium.evaluate(tab, "document.body.innerText")


def test_chromium_check_does_see_console_errors(chromium, tmp_path):
    """A check that cannot fail is worth nothing: a broken page must show up as problems."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<img src="missing.png"><script>console.error("boom"); undefinedFunction();</script></body></html>')
    problems = chromium.problems(chromium.open(page.as_uri()))
    assert any("boom" in p for p in problems)
    assert any("undefinedFunction" in p for p in problems)
    assert any("missing.png" in p for p in problems)
