"""The system under test as the harness sees it: the embedded reference, started as its own
program (``python -m reference_middleware``; the harness never imports it), or a user's
integration layer at a URL. Either way it is reached over HTTP only."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from simulators.serving import write_env_file

STARTUP_TIMEOUT_S = 20.0



def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the harness dies, however it dies (Linux's
    parent-death signal), so a killed harness leaves no reference holding its port and database."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def known_defects() -> list[str]:
    """The reference's defect names. The harness never imports the reference (it stands for a
    user's layer), so they are read from its source."""
    from importlib.util import find_spec

    spec = find_spec("reference_middleware")
    if spec is None or spec.origin is None:
        return []
    source = (Path(spec.origin).parent / "defects.py").read_text()
    return re.findall(r'^    [A-Z_]+ = "([a-z-]+)"', source, re.MULTILINE)

class Unreachable(RuntimeError):
    """The integration layer cannot be reached (or did not start)."""


FREE_PORTS_FROM = 10_000  # well clear of the well-known and registered ports services use


def _ephemeral_start() -> int:
    """Where the kernel's range of ports for outgoing connections begins (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a TIME_WAIT port is free
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(count: int = 1) -> int:
    """A port free on loopback now (the first of ``count`` in a row), for a process to bind a
    moment later. Chosen at random below the kernel's ephemeral range: a port from bind(0) is one
    that any outgoing connection may take as its own before the child binds it (runs side by side
    make hundreds of them: seen as "address already in use"); below that range, only another
    explicit bind can, and a random choice among thousands makes that unlikely."""
    top = _ephemeral_start() - count
    for _ in range(200):
        if top <= FREE_PORTS_FROM:
            break
        base = FREE_PORTS_FROM + secrets.randbelow(top - FREE_PORTS_FROM)
        if all(_bindable(base + i) for i in range(count)):
            return base
    with socket.socket() as s:  # no room below the ephemeral range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout_s: float, interval_s: float = 0.05, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s:g} s")
        time.sleep(interval_s)


def check_reachable(url: str, timeout_s: float = 3.0) -> None:
    """A TCP connection to the URL's host and port, or :class:`Unreachable` saying so."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--sut-url must be an http(s) URL, got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as e:
        raise Unreachable(f"the integration layer at {url} is unreachable ({e.strerror or e}); is it running?") from None


@dataclass
class ReferenceProcess:
    """The reference integration layer in its own process, with its env file, database and defects."""

    workdir: Path
    secret: str
    defects: tuple[str, ...] = ()
    database: str | None = None
    react_delay_s: float = 0.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    health: dict = field(default_factory=dict)  # its /healthz once up: defects, and the clock it schedules by

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env_file(self) -> Path:
        return self.workdir / ".env.fakes"

    def start(self, fakes_env: dict[str, str] | None = None) -> None:
        if fakes_env is not None:
            write_env_file(self.env_file, fakes_env)
        database = self.database or f"sqlite:///{self.workdir / 'reference.sqlite3'}"
        # The secret goes in the environment (readable by this user only), not on the command line
        # (which `ps` shows every user).
        args = [sys.executable, "-m", "reference_middleware", "--port", str(self.port), "--fakes-env", str(self.env_file),
                "--database", database]
        for name in self.defects:
            args += ["--defect", name]
        if self.react_delay_s:
            args += ["--react-delay", f"{self.react_delay_s:g}"]
        with open(self.workdir / "reference.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "RH_WEBHOOK_SECRET": self.secret},
                                         preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    def wait_healthy(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise Unreachable(f"the reference exited with {self.proc.returncode}: {self.log()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = httpx.get(f"{self.url}/healthz", timeout=1)
                if response.status_code == 200:
                    self.health = response.json()
                    return True
            return False

        try:
            wait_until(healthy, timeout_s, what="the reference's /healthz")
        except TimeoutError as e:
            raise Unreachable(str(e)) from None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what is not in its database is gone."""
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
