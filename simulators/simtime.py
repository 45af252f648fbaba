"""Business time read off the SimPy environment: the clock of a world."""

from __future__ import annotations

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
