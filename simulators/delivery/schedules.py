"""Retry schedules of real webhook platforms, as delays in *simulated* seconds.

Entry ``n`` is how long to wait after attempt ``n`` ended (answered, failed or timed out) before
attempt ``n + 1``; entry 0 is the wait before the first attempt (0: at once). The length of a
schedule is the number of attempts; after the last one the delivery gives up.

- ``standard-webhooks``: the schedule the Standard Webhooks specification recommends: at once,
  then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (10 attempts, about 3 d 4 h).
- ``shopify``: Shopify documents "8 retries over 4 hours" without the exact spacing; modelled as
  the first delivery plus 8 retries doubling from 1 minute (1, 2, 4 ... 128 min): 9 attempts,
  4 h 15 min from the first to the last.
- ``stripe``: Stripe documents "up to 3 days with an exponential back off" in live mode;
  modelled as 1 min, 5 min, 30 min, then doubling from 1 h to 16 h, then 16 h and 24 h:
  11 attempts, 2 d 23.6 h from the first to the last.
"""

from __future__ import annotations

from collections.abc import Sequence

MINUTE = 60
HOUR = 3600

SCHEDULES: dict[str, tuple[float, ...]] = {
    "standard-webhooks": (0, 5, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 14 * HOUR, 20 * HOUR, 24 * HOUR),
    "shopify": (0, *(MINUTE * 2**k for k in range(8))),
    "stripe": (0, MINUTE, 5 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR, 16 * HOUR, 24 * HOUR),
}


def schedule(name_or_delays: str | Sequence[float]) -> tuple[float, ...]:
    """The delays of a named schedule, or a custom list of delays checked for sense."""
    if isinstance(name_or_delays, str):
        try:
            return SCHEDULES[name_or_delays]
        except KeyError:
            raise ValueError(f"unknown retry schedule {name_or_delays!r}; choose one of: {', '.join(SCHEDULES)}") from None
    delays = tuple(float(d) for d in name_or_delays)
    if not delays or any(d < 0 for d in delays):
        raise ValueError(f"a retry schedule needs at least one delay and no negative ones, got {list(delays)}")
    return delays
