"""The clock of the world: business time (documents, events) as opposed to wall time.

The fakes stamp documents with ``clock.now()``. Standalone they run on a :class:`WallClock`
that starts at the scenario epoch and advances with wall time (times ``time_scale``); inside a
world the SimPy environment is the clock. Technical latency is always measured in wall time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, Field

from simulators.seed import DEFAULT_EPOCH


class Clock(Protocol):
    epoch: datetime
    time_scale: float

    def seconds(self) -> float:
        """Simulated seconds since the epoch."""

    def now(self) -> datetime:
        """Current simulated time."""


class WallClock:
    """Simulated time that starts at ``epoch`` and runs ``time_scale`` times faster than wall time."""

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.epoch = epoch
        self.time_scale = time_scale
        self._start = time.monotonic()

    def seconds(self) -> float:
        return (time.monotonic() - self._start) * self.time_scale

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.seconds())


class BusinessClock(BaseModel):
    """What ``GET /clock`` tells a layer that schedules work by business time."""

    now: datetime = Field(description="Business time now (UTC)")
    time_scale: float = Field(description="Business seconds per wall second: how fast this clock runs")


def to_wall_seconds(clock: Clock, simulated_seconds: float) -> float:
    """How long a span of simulated time lasts on the wall (e.g. for a Retry-After header)."""
    return simulated_seconds / clock.time_scale


def technical_seconds(clock: Clock) -> float:
    """The clock's reading in wall-clock seconds, for technical lifetimes (tokens, idempotency
    keys) that a client experiences in wall time: at 50,000x an hour-long token would
    otherwise expire in 72 ms. With time_scale 1 it is business time itself."""
    return clock.seconds() / clock.time_scale


class ManualClock:
    """Simulated time that moves only when told to: for tests and step-by-step embedding."""

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, time_scale: float = 1.0) -> None:
        self.epoch = epoch
        self.time_scale = time_scale
        self._seconds = 0.0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._seconds += seconds

    def seconds(self) -> float:
        return self._seconds

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self._seconds)
