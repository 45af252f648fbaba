"""One fake system: its store plus the shared machinery (journal, fault hooks, auth, idempotency)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from simulators.clock import Clock, WallClock
from simulators.fakekit.auth import Authenticator, Credentials
from simulators.fakekit.hooks import FaultHooks
from simulators.fakekit.idempotency import IdempotencyStore
from simulators.fakekit.journal import Journal
from simulators.seed import MasterData


class Store(Protocol):
    def reset(self) -> None:
        """Back to the freshly seeded state."""

    def snapshot(self) -> dict[str, Any]:
        """Everything the system holds, as JSON-ready data."""


class FakeSystem:
    def __init__(
        self,
        name: str,
        master: MasterData,
        store_factory: Callable[[MasterData, Clock], Store],
        credentials: Credentials,
        *,
        clock: Clock | None = None,
        public_paths: frozenset[str] = frozenset(),
        journal_capacity: int = 10_000,
        spill_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.master = master
        self.credentials = credentials
        self.clock = clock or WallClock(master.config.epoch)
        self.store = store_factory(master, self.clock)
        self.public_paths = public_paths
        self.admin_token: str | None = None  # set when served beyond loopback: /__admin then wants it
        self.last_call = -math.inf  # monotonic time of the layer's last call, whatever it was for
        seed = master.config.seed
        self.journal = Journal(journal_capacity, spill_dir / f"{name}-journal.jsonl" if spill_dir else None)
        self.hooks = FaultHooks(name, seed, self.clock, public_paths=public_paths)
        self.auth = Authenticator(name, seed, self.clock, credentials)
        self.idempotency = IdempotencyStore(self.clock)

    def reset(self) -> None:
        self.store.reset()
        self.journal.clear()
        self.hooks.clear()
        self.auth.reset()
        self.idempotency.clear()
        self.last_call = -math.inf
