"""The harness supervises the layer: one that dies or stops answering ends the run with exit 3
and a message saying so, never a list of returns "lost" by the business."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import yaml

from simulators.oracle import query
from simulators.runner import RunOptions, run
from simulators.scenario import Scenario
from simulators.sut import wait_until
from tests.test_oracle import TINY


def _reference_of(pid: int) -> tuple[int, int] | None:
    """(pid, port) of the embedded reference started by the harness process ``pid``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"reference_middleware" in args:
                return int(child), int(args[args.index(b"--port") + 1])
    return None


def _has_events(pid: int) -> bool:
    """The reference has stored ten return requests (its metrics say): the season is under way."""
    found = _reference_of(pid)
    if found is None:
        return False
    try:
        metrics = httpx.get(f"http://127.0.0.1:{found[1]}/metrics", timeout=1).text
    except httpx.HTTPError:
        return False
    stored = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
              if line.startswith('reference_deliveries_total{') and 'type="return.created"' in line]
    return sum(stored) >= 10


def no_lost(verdict: dict) -> bool:
    return not any(c["valid"] is False and c["counts"].get("lost") for c in verdict["checks"])


def test_a_killed_reference_ends_the_run_with_exit_3_naming_the_death(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    harness = subprocess.Popen([sys.executable, "-m", "simulators.cli", "run", "tiny.yaml", "--report-dir", "out"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        wait_until(lambda: _has_events(harness.pid), 60, what="the reference's first event")
        os.kill(_reference_of(harness.pid)[0], signal.SIGKILL)
        out, _ = harness.communicate(timeout=120)
    finally:
        harness.kill()
    assert harness.returncode == 3, out
    assert "died: killed by SIGKILL (signal 9)" in out and "STOPPED" in out
    verdict = orjson.loads((tmp_path / "out" / "verdict.json").read_bytes())
    assert "killed by SIGKILL" in verdict["stopped"]["reason"] and not verdict["ok"]
    assert no_lost(verdict)  # what it had not done yet is undecidable, not lost
    undecided = [c for c in verdict["checks"] if c["valid"] is None and (c["reason"] or "").startswith("undecidable")]
    assert all("killed by SIGKILL" in c["reason"] for c in undecided)


def _harness(tmp_path: Path) -> subprocess.Popen:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    return subprocess.Popen([sys.executable, "-m", "simulators.cli", "run", "tiny.yaml", "--report-dir", "out"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")  # a zombie has let go of everything
    except (FileNotFoundError, IndexError):
        return True


def test_sigterm_writes_an_interrupted_verdict_and_stops_the_reference(tmp_path):
    """What a CI timeout sends: the harness stops the world and its reference, and still writes
    the verdict, JUnit and report of what it saw (exit 128 + 15)."""
    harness = _harness(tmp_path)
    try:
        wait_until(lambda: _has_events(harness.pid), 60, what="the reference's first events")
        reference_pid = _reference_of(harness.pid)[0]
        assert b"whsec_" not in Path(f"/proc/{reference_pid}/cmdline").read_bytes()  # no secret where `ps` shows it
        harness.send_signal(signal.SIGTERM)
        out, _ = harness.communicate(timeout=60)
    finally:
        harness.kill()
    assert harness.returncode == 143, out
    verdict = orjson.loads((tmp_path / "out" / "verdict.json").read_bytes())
    assert verdict["stopped"]["reason"].startswith("interrupted by SIGTERM") and verdict["stopped"]["signal"] == 15
    assert (tmp_path / "out" / "junit.xml").is_file() and (tmp_path / "out" / "report.html").is_file()
    assert _gone(reference_pid) and no_lost(verdict)


def test_a_harness_killed_outright_takes_its_reference_with_it(tmp_path):
    """SIGKILL leaves the harness no say: the reference goes by the parent-death signal."""
    harness = _harness(tmp_path)
    try:
        wait_until(lambda: _has_events(harness.pid), 60, what="the reference's first events")
        reference_pid = _reference_of(harness.pid)[0]
        harness.kill()
        harness.wait(10)
        wait_until(lambda: _gone(reference_pid), 5, what="the orphaned reference to exit")
    finally:
        harness.kill()


class _Acknowledger(BaseHTTPRequestHandler):
    """A layer that acknowledges every webhook and does nothing, until it is shut down."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_external_layer_that_stops_answering_is_reported_with_when(tmp_path):
    layer = ThreadingHTTPServer(("127.0.0.1", 0), _Acknowledger)
    layer.received = 0
    threading.Thread(target=layer.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{layer.server_address[1]}/webhooks"

    def going_away():  # after a few events it goes away, as a crashed layer does
        wait_until(lambda: layer.received >= 5, 60, what="five deliveries")
        layer.shutdown()
        layer.server_close()

    stopper = threading.Thread(target=going_away, daemon=True)
    stopper.start()
    verdict = run(RunOptions(scenario=Scenario.model_validate(TINY), report_dir=tmp_path / "out", sut_url=url, base_port=0,
                             silence_s=3, log=lambda _: None))
    stopper.join(5)
    assert "stopped answering" in verdict["stopped"]["reason"] and url in verdict["stopped"]["reason"]
    assert "cannot connect" in verdict["stopped"]["reason"] and not verdict["ok"]
    assert no_lost(verdict)


def test_a_layer_at_a_url_is_started_killed_and_restarted_through_its_own_commands(tmp_path):
    """--sut-start runs once the fakes are up (the layer reads .env.fakes as it starts), the kill
    nemesis uses --sut-stop and --sut-start, and the harness stops at the end what it started.
    The layer here is the reference, started as a user would start theirs. A second run against
    the same database passes too: each run's ids carry its own run id, so nothing is cleared."""
    from simulators.sut import free_port

    port, base = free_port(), free_port(count=5)  # the fakes on base+1..base+4
    spec = {**TINY, "name": "killed-twice", "faults": {"kills": {"count": 2, "down_s": 0.5, "up_s": 1}}}
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(spec))
    pid = tmp_path / "layer.pid"
    start = (f"{sys.executable} -m reference_middleware --port {port} --fakes-env out/.env.fakes "
             f"--database sqlite:///{tmp_path / 'layer.sqlite3'} 2>>layer.log & echo $! > {pid}")
    command = [sys.executable, "-m", "simulators.cli", "run", "killed.yaml", "--report-dir", "out",
               "--sut-url", f"http://127.0.0.1:{port}/webhooks", "--base-port", str(base),
               "--sut-start", start, "--sut-stop", f"kill -KILL $(cat {pid})"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    verdict = orjson.loads((tmp_path / "out" / "verdict.json").read_bytes())
    first = verdict["summary"]["run_id"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path, check=False)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    second = orjson.loads((tmp_path / "out" / "verdict.json").read_bytes())["summary"]["run_id"]
    assert first != second and query(tmp_path / "out" / "run", "SELECT DISTINCT return_id FROM expected")[0][0].startswith(f"RET-{second}-")
    assert len(verdict["summary"]["kills"]) == 2 and verdict["coverage"]["nemesis"]["kills"] == 2
    assert "starting the layer with --sut-start" in done.stdout
    # What the harness started, it stopped: the last instance is gone.
    last = int(pid.read_text())
    wait_until(lambda: not Path(f"/proc/{last}").exists() or "Z" in Path(f"/proc/{last}/stat").read_text().split()[2], 10,
               what="the layer's exit")


def test_a_layer_started_by_hand_is_waited_for_once_the_fakes_are_up(tmp_path):
    """--sut-wait: the fakes start and write .env.fakes, then the run waits for the layer, which a
    person (here: this test) starts with those settings; a layer that never comes is exit 3."""
    from simulators.sut import free_port

    port, base = free_port(), free_port(count=5)  # the fakes on base+1..base+4
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    url = f"http://127.0.0.1:{port}/webhooks"
    common = ["--sut-url", url, "--base-port", str(base)]
    never = subprocess.run([sys.executable, "-m", "simulators.cli", "run", "tiny.yaml", "--report-dir", "gone", *common, "--sut-wait", "1"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False, env={**os.environ, "COLUMNS": "200"})
    assert never.returncode == 3 and "did not accept connections within 1 s" in never.stderr, never.stdout + never.stderr
    harness = subprocess.Popen([sys.executable, "-m", "simulators.cli", "run", "tiny.yaml", "--report-dir", "out", *common, "--sut-wait", "60"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    layer = None
    try:
        wait_until(lambda: (tmp_path / "out" / ".env.fakes").is_file(), 60, what="the fakes' settings")
        layer = subprocess.Popen([sys.executable, "-m", "reference_middleware", "--port", str(port), "--fakes-env", "out/.env.fakes",
                                  "--database", f"sqlite:///{tmp_path / 'layer.sqlite3'}"], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out, _ = harness.communicate(timeout=180)
    finally:
        harness.kill()
        if layer is not None:
            layer.kill()
            layer.wait(timeout=10)
    assert harness.returncode == 0, out[-3000:]
    assert "waiting up to 60 s for your layer" in out and "is up" in out


def test_ports_for_children_come_from_below_the_range_outgoing_connections_use():
    """A child binds its port a moment after the harness chose it; a port from bind(0) is one any
    outgoing connection may take meanwhile ("address already in use" with runs side by side)."""
    import socket

    from simulators.sut import _ephemeral_start, free_port

    for count in (1, 5):
        base = free_port(count=count)
        assert base + count <= _ephemeral_start()
        socks = [socket.socket() for _ in range(count)]
        try:
            for offset, s in enumerate(socks):
                s.bind(("127.0.0.1", base + offset))  # every one of them free
        finally:
            for s in socks:
                s.close()
