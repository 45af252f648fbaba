"""The Locust load tests, run as Locust users would run them: subprocesses on loopback.

Locust monkey-patches the standard library with gevent, so it never runs in pytest's process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.oracle import query
from tests.load_run import start, wait, wait_for_env

# Looked up, not imported: importing Locust would patch pytest's own process with gevent.
REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed (extra 'load')")


def test_our_options_are_offered_in_locusts_web_ui_except_those_fixed_at_start():
    """Locust's web UI lists the custom options it can apply to the next test: the shape, rate,
    pace and gates, the shape as a choice; not the environment, which is started once at init."""
    shown = subprocess.run([sys.executable, "-c", "import json, load.locustfile\n"
                            "from locust.argument_parser import ui_extra_args_dict\n"
                            "print(json.dumps(ui_extra_args_dict([])))"], capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert shown.returncode == 0, shown.stderr
    options = json.loads(shown.stdout.splitlines()[-1])
    assert {"rh_shape", "rh_rate", "rh_pace", "sla_ack_ms", "sla_rma_lag_s"} <= set(options)
    assert not {"rh_env", "rh_dir", "rh_sut_url", "rh_defects", "rh_scenario", "rh_env_json", "rh_run"} & set(options)
    assert "post-holiday-peak" in options["rh_shape"]["choices"]


def test_distributed_load_reconciles_and_passes_its_gates(tmp_path):
    """A master and two workers drive the reference for 15 s; nothing lost, nothing doubled."""
    began = time.monotonic()
    run = wait(tmp_path, start(tmp_path, "--rh-rate", "150", "--rh-settle", "40", "--sla-ack-ms", "p99=1000",
                               "--sla-rma-lag-s", "p95=10", workers=2, seconds=15), timeout_s=150)
    assert run.code == 0, run.output[-3000:]
    report = run.report
    assert report["returns"] >= 25
    assert all(g["passed"] for g in report["gates"]), report["gates"]
    assert report["checks"] and not [name for name, valid in report["checks"].items() if valid is False]
    assert report["checks"]["one-rma-per-approved-return"] is True
    assert report["checks"]["one-credit-memo-per-refund"] is True
    # Locust's own statistics, from its CSV: the deliveries and the end-to-end lags.
    stats = run.stats()
    assert int(stats[("POST", "webhook return.created")]["Request Count"]) >= report["returns"]
    assert int(stats[("POST", "webhook inspection.completed")]["Request Count"]) > 0
    assert int(stats[("E2E", "return requested → RMA")]["Request Count"]) > 0
    assert int(stats[("", "Aggregated")]["Failure Count"]) == 0
    # The oracle decides acknowledgement latency from the load's delivery journal (open loop,
    # against the run's own p99 gate), the same attempts the gate's histograms were built from.
    assert report["checks"]["acknowledgement-latency"] is True
    deliveries = [dict(zip(("event_id", "event_type", "status", "latency_ms", "round_trip_ms"), row)) for row in
                  query(tmp_path / "run", "SELECT event_id, event_type, status, latency_ms, round_trip_ms FROM deliveries")]
    assert len(deliveries) >= report["returns"] and len({d["event_id"] for d in deliveries}) >= report["returns"]
    assert {d["event_type"] for d in deliveries} >= {"return.created", "tracking.updated", "inspection.completed"}
    assert all(200 <= d["status"] < 300 and d["latency_ms"] >= d["round_trip_ms"] > 0 for d in deliveries)
    ack = next(c for c in json.loads((tmp_path / "verdict.json").read_text())["checks"] if c["name"] == "acknowledgement-latency")
    assert ack["sla"]["threshold"] == 1000 and ack["sla"]["samples"] == len(deliveries) == report["ack_latency_ms"]["corrected"]["count"]
    # Both workers made returns, from disjoint halves of the orders.
    orders = query(tmp_path / "run", "SELECT order_id FROM expected")
    parities = {int(order.removeprefix("SO-")) % 2 for (order,) in orders}
    assert parities == {0, 1}
    print(f"distributed load test: {time.monotonic() - began:.1f} s wall")


def test_the_loads_delivery_attempts_let_the_oracle_decide_acknowledgement_latency():
    """No Locust here: the master's journal of attempts, as the oracle's ``sla_ack`` reads it.
    Latency counts from the intended send time (round trip plus lateness); unanswered attempts
    carry none; one late attempt in a hundred is over p99 and fails the check."""
    from load.driver import journal
    from simulators.oracle import RunRecord, tables
    from simulators.oracle.checks import sla_ack

    on_time = [(f"evt_{n}", "return.created", f"RET-{n}", 1, 204, 0.004, 0.0, None, 0.0) for n in range(99)]
    unanswered = ("evt_x", "return.created", "RET-x", 1, None, 30.0, 0.0, None, 0.0)
    late = ("evt_l", "tracking.updated", "RET-l", 1, 200, 0.004, 0.9, "duplicate", 0.0)  # sent 0.9 s after its slot
    rows = journal([*on_time, unanswered])
    assert rows[0]["latency_ms"] == 4.0 and rows[-1]["latency_ms"] is None and rows[-1]["status"] is None

    def decided(attempts):
        run = RunRecord(scenario={"slas": {"ack_latency_ms_p99": 500}}, expected={}, state={}, journals={}, deliveries=journal(attempts))
        return sla_ack(tables.from_record(run), run.scenario)

    assert decided([*on_time, unanswered]).valid is True
    result = decided([*on_time, unanswered, late, late])
    assert result.valid is False and result.sla["observed"] == 904.0 and result.sla["samples"] == 101
    assert decided([]).valid is None


def _stall(directory, after_s: float, for_s: float) -> None:
    pid = wait_for_env(directory)["reference_pid"]
    time.sleep(after_s)  # the fault's timing, not a synchronisation
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(for_s)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_gates_fail_for_slow_acks_a_stall_and_lost_deduplication(tmp_path):
    """Three short runs at once: the `slow` reference, a reference frozen for 4 s mid-run, and
    `no-dedupe` under at-least-once delivery. Each fails the gate that should catch it."""
    began = time.monotonic()
    slow, stall, dedupe = tmp_path / "slow", tmp_path / "stall", tmp_path / "no-dedupe"
    runs = {
        slow: start(slow, "--rh-defects", "slow", "--rh-rate", "60", "--sla-ack-ms", "p99=250", "--rh-no-reconcile", seconds=12),
        stall: start(stall, "--rh-rate", "120", "--rh-pace", "0.5", "--sla-ack-ms", "p99=1500", "--rh-no-reconcile", seconds=16),
        dedupe: start(dedupe, "--rh-defects", "no-dedupe", "--rh-rate", "120", "--rh-duplicate-rate", "0.3", "--rh-settle", "30",
                      seconds=14),
    }
    _stall(stall, after_s=6, for_s=4)
    results = {d: wait(d, procs, timeout_s=150) for d, procs in runs.items()}

    run = results[slow]
    assert run.code == 1, run.output[-3000:]
    assert "SLA gate FAILED: ack latency p99 (corrected)" in run.output
    assert run.report["ack_latency_ms"]["corrected"]["p99"] >= 250

    run = results[stall]
    assert run.code == 1, run.output[-3000:]
    assert "SLA gate FAILED: ack latency p99 (corrected)" in run.output
    corrected, uncorrected = run.report["ack_latency_ms"]["corrected"], run.report["ack_latency_ms"]["uncorrected"]
    assert corrected["p99"] >= 2000 and corrected["max"] >= 3000
    assert uncorrected["p50"] < corrected["p99"]  # side by side: what a closed-loop figure would have shown

    run = results[dedupe]
    assert run.code == 1, run.output[-3000:]
    checks = run.report["checks"]
    doubled = [name for name in ("one-rma-per-approved-return", "one-credit-memo-per-refund", "stock-matches-dispositions",
                                 "one-asn-and-label-before-arrival") if checks[name] is False]
    assert doubled, checks
    assert "SLA gate FAILED: reconciliation" in run.output
    print(f"failing gates test: {time.monotonic() - began:.1f} s wall")


class _SinkLayer:
    """A layer that acknowledges every webhook and does nothing else: its returns never settle."""

    def __enter__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _get_json(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as answer:  # loopback only (a URL or a Request)
        return json.loads(answer.read())


def _tab(port: int) -> list[dict]:
    stats = _get_json(f"http://127.0.0.1:{port}/stats/requests")
    return next((t["data"] for t in stats.get("extended_stats", []) if t["key"] == "returnsharness"), [])


def _until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = condition()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s:g} s")


def test_web_ui_shows_the_shape_honestly_and_the_gates_and_ctrl_c_cuts_settling_short(tmp_path):
    """In Locust's web UI: no users or ramp-up fields (the shape sets the load), a returns-harness
    tab saying it settles after Stop, then the gates. Ctrl-C (to the process group, as a terminal
    sends it) while settling reconciles at once; the next Ctrl-C quits, with the gates' exit code."""
    import urllib.parse
    import urllib.request

    from tests.load_run import _free_port

    port = _free_port()
    ui = f"http://127.0.0.1:{port}"
    with _SinkLayer() as layer:
        log = open(tmp_path / "locust.log", "wb")  # noqa: SIM115 (the child keeps it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(REPO / "load" / "locustfile.py"), "--web-host", "127.0.0.1",
             "--web-port", str(port), "--rh-dir", str(tmp_path), "--rh-orders", "500", "--rh-sut-url", layer.url,
             "--rh-settle", "120"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            page = _until(lambda: urllib.request.urlopen(f"{ui}/", timeout=5).read().decode(), 90, "the web UI did not answer")
            assert '"hide_common_options": true' in page and '"title": "returns-harness"' in page
            assert _tab(port)[0]["detail"].startswith("checked when a test stops")
            # The Start button, with one of our options changed in the form; then Stop.
            form = urllib.parse.urlencode({"rh_rate": "120", "rh_shape": "steady"}).encode()
            assert _get_json(urllib.request.Request(f"{ui}/swarm", data=form))["success"] is True
            _until(lambda: _get_json(f"{ui}/stats/requests")["stats"][-1]["num_requests"] >= 10, 60, "no load was sent")
            urllib.request.urlopen(urllib.request.Request(f"{ui}/stop", method="POST"), timeout=5).read()
            settling = _until(lambda: [r for r in _tab(port) if r["item"] == "settling and reconciling"], 60,
                              "the tab did not say it was settling")
            assert "reload" in settling[0]["detail"]
            os.killpg(proc.pid, signal.SIGINT)  # settles for 120 s unless cut short: the layer does nothing
            rows = _until(lambda: [r for r in _tab(port) if r["item"].startswith("gate ")], 30,
                          "Ctrl-C did not cut the settling short")
            assert {"gate reconciliation": "FAIL"}.items() <= {r["item"]: r["result"] for r in rows}.items()
            report = json.loads((tmp_path / "load-report.json").read_text())
            assert report["settle_cut_short"] is True and report["settle_seconds"] < 60
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
    output = (tmp_path / "locust.log").read_text(errors="replace")
    assert code == 1, output[-3000:]  # the reconciliation gate failed: a layer that did nothing
    assert "Traceback" not in output, output[-3000:]
    assert "settling was cut short" in output and "SLA gate FAILED: reconciliation" in output
    assert "will be ignored" not in output  # the shape does read --run-time
    assert not (tmp_path / "load-env.json").exists()  # the environment was stopped with it


def test_the_load_environment_stops_when_the_master_that_started_it_is_killed(tmp_path):
    """The environment runs in a session of its own (out of reach of the terminal's Ctrl-C), so a
    master killed outright cannot stop it: it notices and stops itself, reference and all."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import os, subprocess, sys, time\n"
         "env = subprocess.Popen([sys.executable, '-m', 'load.env', '--dir', sys.argv[1], '--orders', '50',"
         " '--stop-with', str(os.getpid())], start_new_session=True)\n"
         "print(env.pid, flush=True)\ntime.sleep(300)", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    env_pid = int(parent.stdout.readline())
    try:
        reference_pid = wait_for_env(tmp_path)["reference_pid"]
        parent.kill()
        parent.wait()
        _until(lambda: not (tmp_path / "load-env.json").exists(), 30, "the environment did not stop")
        _until(lambda: _gone(reference_pid), 30, "the reference outlived its environment")
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(env_pid, signal.SIGKILL)


def _gone(pid: int) -> bool:
    """Ended (or a zombie nobody reaps: a container's init may not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
