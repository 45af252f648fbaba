"""Run a Locust load of load/locustfile.py as subprocesses (never Locust inside pytest's process)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO / "load" / "locustfile.py"


def locust(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args]


@dataclass
class LoadRun:
    directory: Path
    code: int
    output: str

    @property
    def report(self) -> dict:
        return json.loads((self.directory / "load-report.json").read_text())

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        with open(self.directory / "stats_stats.csv") as f:
            return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def start(directory: Path, *options: str, workers: int = 0, seconds: int = 10) -> list[subprocess.Popen]:
    """A headless run: one process, or a master and ``workers`` workers on loopback."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    common = ["--rh-dir", str(directory), *options]
    log = open(directory / "locust.log", "wb")  # noqa: SIM115 (the children keep it)
    if not workers:
        return [subprocess.Popen(locust("--headless", "-t", f"{seconds}s", "--csv", str(directory / "stats"), *common),
                                 cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)]
    port = _free_port()
    master = subprocess.Popen(locust("--headless", "-t", f"{seconds}s", "--csv", str(directory / "stats"), "--master",
                                     "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                                     "--expect-workers", str(workers), "--expect-workers-max-wait", "60", *common),
                              cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    procs = [master]
    for _ in range(workers):
        procs.append(subprocess.Popen(locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
                                      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    return procs


def wait(directory: Path, procs: list[subprocess.Popen], timeout_s: float) -> LoadRun:
    deadline = time.monotonic() + timeout_s
    try:
        code = procs[0].wait(max(1.0, deadline - time.monotonic()))
        for p in procs[1:]:
            p.wait(max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        leftover = directory / "load-env.json"  # the environment the master started, if it could not stop it
        if leftover.exists():
            with contextlib.suppress(OSError, ValueError, KeyError):
                os.kill(json.loads(leftover.read_text())["pid"], signal.SIGTERM)
    return LoadRun(directory, code, (directory / "locust.log").read_text(errors="replace"))


def _free_port() -> int:
    from simulators.sut import free_port

    return free_port()


def wait_for_env(directory: Path, timeout_s: float = 60.0) -> dict:
    """The environment a run started (its reference's pid among others), once it is up."""
    path = directory / "load-env.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(path.read_text())
        time.sleep(0.1)
    raise TimeoutError(f"{path} did not appear within {timeout_s:g} s")
