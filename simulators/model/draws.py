"""Weighted draws from a mix (reasons, resolutions, conditions, dispositions), prepared once."""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate

Table = tuple[list, list[float]]


def table(shares: dict) -> Table:
    """A mix ready to draw from: its values and cumulative weights."""
    return list(shares), list(accumulate(shares.values()))


def pick(rng: random.Random, table: Table):
    # What random.choices does with cum_weights, without rebuilding them on every draw.
    population, cumulative = table
    return population[bisect(cumulative, rng.random() * cumulative[-1], 0, len(population) - 1)]
