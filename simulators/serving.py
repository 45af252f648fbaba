"""Serve the four fakes on loopback from one asyncio loop, and tell an integration layer where.

One loop serves all four (and, later, the world's SimPy clock): handlers of different fakes
never run at the same time, so the model may touch every store without locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from simulators.clock import Clock, WallClock
from simulators.fakekit.auth import Credentials
from simulators.seed import MasterData, master_data

# System name -> offset from the base port (ERP on base+1 ... portal on base+4).
PORT_OFFSETS = {"erp": 1, "wms": 2, "carrier": 3, "returns_portal": 4}
STARTUP_TIMEOUT_S = 10.0


class ServingError(RuntimeError):
    """The fakes could not be served (a port in use, a host that does not resolve...)."""


@dataclass
class RunningFake:
    name: str
    app: object
    url: str

    @property
    def system(self):
        return self.app.state.system

    @property
    def credentials(self) -> Credentials:
        return self.system.credentials


class _IntentionalDrops(logging.Filter):
    """A commit_then_lose fault drops responses on purpose; that is not a server error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_IntentionalDrops())


class _Server(uvicorn.Server):
    # The fleet owns signal handling: four servers must stop together on one Ctrl-C.
    def capture_signals(self):
        return contextlib.nullcontext()


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _bind(host: str, port: int, name: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns TCP_NODELAY on only for sockets created as TCP, and
    # without it Nagle's algorithm stalls every keep-alive request by about 40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except socket.gaierror as exc:
        sock.close()
        raise ServingError(f"--host {host!r}: not an address of this machine ({exc.strerror or exc})") from None
    except OSError as exc:
        sock.close()
        raise ServingError(f"cannot serve the {name} fake on {host}:{port}: {exc.strerror or exc}; choose another --base-port") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def create_apps(master: MasterData, clock: Clock, **system_options) -> dict[str, object]:
    return {
        name: importlib.import_module(f"simulators.{name}.app").create_app(master=master, clock=clock, **system_options)
        for name in PORT_OFFSETS
    }


class FakeFleet:
    """The four fakes, served over HTTP. ``base_port=0`` picks free ports (for tests)."""

    def __init__(
        self,
        seed: int = 0,
        *,
        host: str = "127.0.0.1",
        base_port: int = 8100,
        master: MasterData | None = None,
        clock: Clock | None = None,
        apps: dict[str, object] | None = None,
        admin_token: str | None = None,
        **system_options,
    ) -> None:
        """Served beyond loopback, the admin API wants ``admin_token`` (one is made if none is
        given: :attr:`admin_token`, printed once by the CLI); on loopback it answers loopback only."""
        self.master = master or master_data(seed)
        self.clock = clock or WallClock(self.master.config.epoch)
        self.host = host
        self.base_port = base_port
        self.apps = apps or create_apps(self.master, self.clock, **system_options)
        self.admin_token = admin_token or (None if _loopback(host) else secrets.token_urlsafe(24))
        for app in self.apps.values():
            app.state.system.admin_token = self.admin_token
        self.fakes: dict[str, RunningFake] = {}
        self._servers: list[_Server] = []
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> dict[str, RunningFake]:
        sockets = []
        try:
            for name in PORT_OFFSETS:
                port = self.base_port + PORT_OFFSETS[name] if self.base_port else 0
                sockets.append((name, _bind(self.host, port, name)))
        except ServingError:
            for _, sock in sockets:
                sock.close()
            raise
        for name, sock in sockets:
            config = uvicorn.Config(self.apps[name], log_level="warning", access_log=False, lifespan="off")
            server = _Server(config)
            self._servers.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name=f"fake-{name}"))
            port = sock.getsockname()[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.fakes[name] = RunningFake(name, self.apps[name], f"http://{host}:{port}")
        await self._wait_started()
        return self.fakes

    async def _wait_started(self) -> None:
        async def all_started():
            while not all(s.started for s in self._servers):
                for task in self._tasks:
                    if task.done():
                        task.result()  # re-raise what stopped a server early
                await asyncio.sleep(0.01)

        try:
            await asyncio.wait_for(all_started(), STARTUP_TIMEOUT_S)
        except TimeoutError:
            raise ServingError(f"the fakes did not start within {STARTUP_TIMEOUT_S:g} s") from None

    async def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def env(self) -> dict[str, str]:
        """Where each fake is and how to authenticate: what an integration layer needs."""
        # The business clock, for a layer that schedules by it (any fake's /clock: they share one).
        env = {"RH_SEED": str(self.master.config.seed), "RH_CLOCK_URL": f"{self.fakes['erp'].url}/clock"}
        for name, fake in self.fakes.items():
            prefix = f"RH_{name.upper()}"
            env[f"{prefix}_URL"] = fake.url
            creds = fake.credentials
            if creds.api_key:
                env[f"{prefix}_API_KEY"] = creds.api_key
            if creds.client_id:
                env[f"{prefix}_TOKEN_URL"] = f"{fake.url}/oauth/token"
                env[f"{prefix}_CLIENT_ID"] = creds.client_id
                env[f"{prefix}_CLIENT_SECRET"] = creds.client_secret
        return env

    def write_env(self, path: Path, **extra: str) -> Path:
        return write_env_file(path, {**self.env(), **extra})


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    """KEY=VALUE lines an integration layer reads, readable by their owner only (credentials)."""
    text = "# Written by returns-harness: where the fake systems listen and how to authenticate.\n"
    return write_private(path, text + "".join(f"{key}={value}\n" for key, value in env.items()))


def write_private(path: Path, text: str) -> Path:
    """``text`` in a file only its owner can read (it holds credentials or secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode on open
        f.write(text)
    return path


@contextlib.contextmanager
def fleet_in_thread(seed: int = 0, **options) -> Iterator[FakeFleet]:
    """The fleet served from a background thread, for synchronous callers (tests, pytest-bdd steps)."""
    fleet = FakeFleet(seed, **options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="returns-harness-fakes", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fleet.start(), loop).result(STARTUP_TIMEOUT_S + 5)
        yield fleet
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(fleet.stop(), loop).result(STARTUP_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STARTUP_TIMEOUT_S)
        loop.close()
