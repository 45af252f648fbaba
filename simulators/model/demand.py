"""When customers request returns: a non-homogeneous Poisson process over the season.

The rate is the scenario's base rate times three shapes: the hour of the day, the day of the
week, and the season profile. Arrivals are drawn by thinning (Lewis and Shedler): candidates at
the peak rate, each kept with probability rate(t) / peak.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

DAY = 86_400.0

# Share of a day's requests by hour (portal traffic: quiet at night, busiest in the evening).
_HOURLY = [0.25, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.0, 1.2, 1.35, 1.45,
           1.5, 1.45, 1.4, 1.4, 1.45, 1.55, 1.65, 1.7, 1.6, 1.3, 0.9, 0.5]
HOURLY = [h * 24 / sum(_HOURLY) for h in _HOURLY]  # mean 1.0
# Monday to Sunday: returns are started most at the start of the week.
_WEEKLY = [1.15, 1.1, 1.05, 1.0, 0.95, 0.85, 0.9]
WEEKLY = [w * 7 / sum(_WEEKLY) for w in _WEEKLY]  # mean 1.0


def _post_holiday_peak(day: float) -> float:
    # 26 December runs at about 3.3x an average day and the 27th-29th stay high (Returnly,
    # nShift); a second bump around 2 January, "National Returns Day" (UPS).
    return 1.0 + 2.3 * math.exp(-day / 3.0) + 0.8 * math.exp(-((day - 7.0) ** 2) / 2.0)


def _promotion_spike(day: float) -> float:
    # Returns from a promotion arrive about two days after its deliveries: a sharp spike.
    return 1.0 + 3.0 * math.exp(-((day - 2.0) ** 2) / 0.5)


def _recall(day: float) -> float:
    # A product recall announced on day 0: a surge that decays over a few days.
    return 1.0 + 5.0 * math.exp(-day / 2.0)


PROFILES: dict[str, Callable[[float], float]] = {
    "steady": lambda day: 1.0,
    "post-holiday-peak": _post_holiday_peak,
    "promotion-spike": _promotion_spike,
    "recall": _recall,
}


def rate_multiplier(profile: str, epoch: datetime, t: float) -> float:
    """Multiplier of the base rate at simulated second ``t`` (hour x weekday x profile)."""
    at = epoch + timedelta(seconds=t)
    return HOURLY[at.hour] * WEEKLY[at.weekday()] * PROFILES[profile](t / DAY)


def arrival_times(rng: random.Random, *, returns_per_day: float, days: float, profile: str, epoch: datetime) -> Iterator[float]:
    """Simulated seconds of each return request, in order, over ``days``."""
    horizon = days * DAY
    profile_peak = max(PROFILES[profile](d / 10) for d in range(int(days * 10) + 1))
    peak = returns_per_day / DAY * max(HOURLY) * max(WEEKLY) * profile_peak
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= horizon:
            return
        if rng.random() * peak <= returns_per_day / DAY * rate_multiplier(profile, epoch, t):
            yield t


def expected_count(*, returns_per_day: float, start: float, end: float, profile: str, epoch: datetime, step: float = 60.0) -> float:
    """The mean number of requests between two simulated seconds (for tests and planning)."""
    n = max(1, int((end - start) / step))
    width = (end - start) / n
    return sum(rate_multiplier(profile, epoch, start + (i + 0.5) * width) for i in range(n)) * width * returns_per_day / DAY
