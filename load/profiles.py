"""Target load over a run, in returns per minute, from the model's demand profiles.

A seasonal profile maps wall seconds into the simulated season with a time-compression factor
(simulated seconds per wall second): at 4,032x a 14-day season lasts 5 minutes. The rate at
each moment is the base rate times the model's season profile
(:data:`simulators.model.demand.PROFILES`); the hour-of-day and weekday rhythm is left out, as a
day compressed into seconds would turn it into a saw-tooth. ``step`` raises the rate in equal steps to
find the knee. No Locust here: the shape class in :mod:`load.shapes` asks this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from simulators.model.demand import DAY, PROFILES

SHAPES = (*PROFILES, "step")


@dataclass(frozen=True)
class Profile:
    shape: str
    rate_per_min: float  # base rate (the profile's mean level), or the first step
    epoch: datetime
    compression: float = 4032.0  # simulated seconds per wall second
    season_days: float = 14.0
    step_rate_per_min: float = 60.0
    step_s: float = 30.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"--rh-shape: expected one of {', '.join(SHAPES)}, got {self.shape!r}")
        for name in ("rate_per_min", "compression", "season_days", "step_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--rh-{name.replace('_per_min', '').replace('_', '-')}: expected a number above 0, got {getattr(self, name)}")
        if self.step_rate_per_min < 0:
            raise ValueError(f"--rh-step-rate: expected 0 or more returns/minute, got {self.step_rate_per_min}")

    @property
    def duration_s(self) -> float | None:
        """How long the shape lasts on the wall (None: until the run time or a stop)."""
        return None if self.shape == "step" else self.season_days * DAY / self.compression

    def rate(self, run_time_s: float) -> float | None:
        """Target returns/minute at this moment of the run; None once the season is over."""
        if self.shape == "step":
            return self.rate_per_min + self.step_rate_per_min * math.floor(run_time_s / self.step_s)
        simulated = run_time_s * self.compression
        if simulated >= self.season_days * DAY:
            return None
        return self.rate_per_min * PROFILES[self.shape](simulated / DAY)


def users_for(rate_per_min: float, pace_s: float, classes: int = 3) -> int:
    """Users that make ``rate_per_min`` returns a minute, one return per ``pace_s`` per customer,
    with as many carriers and warehouse hands as customers."""
    return classes * max(1, math.ceil(rate_per_min / 60 * pace_s))
