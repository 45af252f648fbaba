"""How a fake announces facts (a return created, a parcel received) without knowing who listens.

The world subscribes and turns them into webhooks; tests subscribe to check them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from simulators.clock import Clock
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
    """What every fake's store starts from: the shared master data, the clock, and the seeded state."""

    def __init__(self, master: MasterData, clock: Clock) -> None:
        super().__init__()
        self.master = master
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError
