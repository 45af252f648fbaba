"""`returns-harness` runs started before the tests that judge them, beside other tests.

Most of a live run's time is waiting: on its compressed clock, on the layer's own wall time (its
backoffs, its restarts after a kill). Started early, beside tests that leave a core idle, such a
run costs the session little. Each run is a command in its own process, as a user runs it;
tests/conftest.py says which runs start when, and the fixtures that need them collect them here.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

TIMEOUT_S = 300


def verdict_of(done: subprocess.CompletedProcess, report_dir: Path) -> dict:
    """The verdict a finished `returns-harness run` wrote (it must have ended with 0 or 1)."""
    verdict = report_dir / "verdict.json"
    assert done.returncode in (0, 1) and verdict.is_file(), f"{report_dir.name}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return orjson.loads(verdict.read_bytes())


class EarlyRuns:
    """Runs by name, each started at most once per session; runs of one group go ``at_once`` at
    a time, in the order they were started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._runs: dict[str, Future] = {}
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def start(self, name: str, args: list[str], *, group: str, at_once: int, cwd: Path | None = None) -> None:
        if name not in self._runs:
            pool = self._pools.setdefault(group, ThreadPoolExecutor(at_once, thread_name_prefix=f"early-{group}"))
            self._runs[name] = pool.submit(self._run, args, cwd or self.root)

    def result(self, name: str) -> subprocess.CompletedProcess:
        return self._runs[name].result()

    def _run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "simulators.cli", *args]
        with self._lock:
            if self._stopping:
                return subprocess.CompletedProcess(command, -9, "", "not started: the session ended first")
            proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            self._procs.add(proc)
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\nkilled: still running after {TIMEOUT_S} s"
        finally:
            with self._lock:
                self._procs.discard(proc)
        return subprocess.CompletedProcess(command, proc.returncode, out, err)

    def stop(self) -> None:
        """At the session's end: runs nobody collected (their tests failed first, or Ctrl-C) are killed."""
        with self._lock:
            self._stopping = True
            for proc in self._procs:
                proc.kill()
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
