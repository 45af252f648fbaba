"""The reference integration layer as a separate process, and a live world run against it.

Tests (and later `returns-harness run`) treat the reference as a user's middleware: a process
started from the command line, told where the fakes are, reached over HTTP only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from simulators.world import World

SECRET = "whsec_" + "cmVmZXJlbmNlLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="
STARTUP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout_s: float, interval_s: float = 0.05, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s:g} s")
        time.sleep(interval_s)


@dataclass
class ReferenceProcess:
    """``python -m reference_middleware`` with its env file, database and defects."""

    workdir: Path
    defects: tuple[str, ...] = ()
    database: str | None = None
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env_file(self) -> Path:
        return self.workdir / ".env.fakes"

    def start(self, fakes_env: dict[str, str] | None = None) -> None:
        if fakes_env is not None:
            self.env_file.write_text("".join(f"{k}={v}\n" for k, v in fakes_env.items()))
        database = self.database or f"sqlite:///{self.workdir / 'reference.sqlite3'}"
        args = [sys.executable, "-m", "reference_middleware", "--port", str(self.port), "--fakes-env", str(self.env_file),
                "--webhook-secret", SECRET, "--database", database]
        for name in self.defects:
            args += ["--defect", name]
        with open(self.workdir / "reference.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(args, cwd=self.workdir, env={**os.environ, **self.extra_env},
                                         stdout=subprocess.DEVNULL, stderr=log)

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the reference exited with {self.proc.returncode}: {self.log()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            return False

        wait_until(healthy, STARTUP_TIMEOUT_S, what="the reference's /healthz")

    async def wait_healthy_async(self) -> None:
        await asyncio.to_thread(self.wait_healthy)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what is not in the database is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        path = self.workdir / "reference.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def status(self, return_id: str) -> dict:
        return httpx.get(f"{self.url}/returns/{return_id}", timeout=5).json()


@contextlib.contextmanager
def reference(workdir: Path, **options) -> Iterator[ReferenceProcess]:
    ref = ReferenceProcess(workdir, **options)
    try:
        yield ref
    finally:
        ref.stop()


def run_world(world: World, ref: ReferenceProcess, timeout_s: float = 180, settle_limit_days: float = 6) -> None:
    """Serve the fakes, start the reference against them, run the season live, settle."""

    async def main() -> None:
        async def started(fleet) -> None:
            ref.start(fleet.env())
            await ref.wait_healthy_async()

        await asyncio.wait_for(world.run_live(webhook_url=f"{ref.url}/webhooks", secret=SECRET, on_started=started,
                                              settle_limit_days=settle_limit_days), timeout_s)

    asyncio.run(main())
