"""How a fake announces facts (a return created, a parcel received) without knowing who listens.

The world subscribes and turns them into webhooks; tests subscribe to check them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

Listener = Callable[[str, dict[str, Any]], None]


class Announcer:
    def __init__(self) -> None:
        # Kept across reset: subscribers outlive the state they hear about.
        self.listeners: list[Listener] = []

    def announce(self, event_type: str, doc: BaseModel, **extra: Any) -> None:
        data = {**doc.model_dump(mode="json"), **extra}
        for listener in list(self.listeners):
            listener(event_type, data)
