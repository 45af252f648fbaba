"""How a fake announces facts (a return created, a parcel received) without knowing who listens.

The world subscribes and turns them into webhooks; tests subscribe to check them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from simulators.clock import Clock
from simulators.domain import IdSequence
from simulators.seed import MasterData

Listener = Callable[[str, dict[str, Any]], None]


class Announcer:
    def __init__(self) -> None:
        # Kept across reset: subscribers outlive the state they hear about.
        self.listeners: list[Listener] = []

    def announce(self, event_type: str, doc: BaseModel, **extra: Any) -> None:
        data = {**doc.model_dump(mode="json"), **extra}
        for listener in list(self.listeners):
            listener(event_type, data)


class FakeStore(Announcer):
    """What every fake's store starts from: the shared master data, the clock, and the seeded state.

    ``run_id`` namespaces the ids the store makes (RET-3f9a1c-000001), so that a layer which keeps
    its state between runs never meets the same id twice."""

    def __init__(self, master: MasterData, clock: Clock) -> None:
        super().__init__()
        self.master = master
        self.clock = clock
        self.run_id = ""
        self.reset()

    def ids(self, prefix: str) -> IdSequence:
        return IdSequence(prefix, self.run_id)

    def use_run_id(self, run_id: str) -> None:
        """Namespace ids from now on: the store starts again (call it before anything happened)."""
        self.run_id = run_id
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError
