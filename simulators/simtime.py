"""Business time read off the SimPy environment: the clock of a world."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta

import simpy


class SimClock:
    """The fakes' clock inside a world: simulated seconds are the environment's ``now``."""

    def __init__(self, env: simpy.Environment, epoch: datetime, time_scale: float = 1.0) -> None:
        self.env = env
        self.epoch = epoch
        self.time_scale = time_scale

    def seconds(self) -> float:
        return self.env.now

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.env.now)


class RealtimeDriver:
    """Steps a plain ``simpy.Environment`` from an asyncio task, ``time_scale`` simulated seconds
    per wall second, so that the fakes' HTTP servers keep serving on the same loop.

    ``simpy.rt.RealtimeEnvironment`` would block the loop in ``time.sleep``; this sleeps on an
    asyncio event instead, and is woken early when something schedules an earlier event.
    """

    def __init__(self, env: simpy.Environment, time_scale: float, epoch: datetime) -> None:
        self.env = env
        self.time_scale = time_scale
        self.epoch = epoch  # with now() and call_at(): the Scheduler that delivery needs
        self._wake = asyncio.Event()
        self._origin: tuple[float, float] | None = None  # (wall, simulated) when run() started
        self.on_late = lambda seconds: None  # told how late (wall seconds) each event was carried out

    def now(self) -> float:
        """Simulated time as the wall clock has it: between events it runs on, unlike env.now."""
        if self._origin is None:
            return self.env.now
        wall, sim = self._origin
        return max(self.env.now, sim + (time.monotonic() - wall) * self.time_scale)

    def call_at(self, sim_seconds: float, fn) -> None:
        """Run ``fn`` at a simulated time, on the loop's thread (the Scheduler of delivery)."""
        event = self.env.timeout(max(0.0, sim_seconds - self.env.now))
        event.callbacks.append(lambda _: fn())
        self._wake.set()

    def wake(self) -> None:
        """Something was scheduled from outside the model (an HTTP handler, say): look again."""
        self._wake.set()

    async def run(self, until: float) -> None:
        self._origin = (time.monotonic(), self.env.now)
        while self.env.now < until:
            due = min(self.env.peek(), until)
            wait = self._origin[0] + (due - self._origin[1]) / self.time_scale - time.monotonic()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            self.on_late(-wait)
            if self.env.peek() <= until:
                self.env.step()
            else:
                self.env.run(until=until)  # nothing due before the end: just move the clock there
            await asyncio.sleep(0)  # let the servers answer between steps


class LiveClock(SimClock):
    """The fakes' clock in live mode: business time runs on between SimPy events."""

    def __init__(self, driver: RealtimeDriver, epoch: datetime) -> None:
        super().__init__(driver.env, epoch, driver.time_scale)
        self.driver = driver

    def seconds(self) -> float:
        return self.driver.now()

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.driver.now())
