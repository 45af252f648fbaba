"""The harness watches itself: how late its own event loop and its world ran during a live run.

A live run compresses business time, so a harness that falls behind (a busy machine, a CPU hog
beside it) could show as a slow integration layer. Two measures, both in wall time:

- **loop stalls**: a probe asks the event loop to wake it every ``PROBE_S``; how much later it
  woke is how long anything else on the loop (the fakes' answers, the deliveries) waited too;
- **world lateness**: how long after its due wall time the driver carried out a model event;
- **CPU pressure**: the share of each wall second in which some task on the machine was ready to
  run but waited for a CPU (Linux's pressure stall information, ``/proc/pressure/cpu``). A layer
  on the same machine answers slowly then through no fault of its own.

The oracle compares them with each timing verdict (:func:`distortion`, and the conditions'
``busy``) and calls UNKNOWN a FAIL that the harness's lateness or a busy machine could explain.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

PROBE_S = 0.02
MAX_US = 600_000_000  # ten minutes
BEHIND_MS = 100.0  # a p99 loop stall above this is worth a warning, whatever the verdicts
PSI = Path("/proc/pressure/cpu")


def cpu_stalled_us() -> int | None:
    """Microseconds, since boot, in which some task waited for a CPU (None without PSI)."""
    try:
        some = PSI.read_text().split("\n", 1)[0]  # "some avg10=0.00 avg60=0.00 avg300=0.00 total=123"
        return int(some.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, MAX_US, 2)


class SelfWatch:
    def __init__(self) -> None:
        self.stalls = _histogram()  # µs
        self.lateness = _histogram()  # µs
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.series: dict[int, list[float]] = {}  # wall second -> [max loop stall ms, max world lateness ms]
        self.pressure: dict[int, float] = {}  # wall second -> % of it some task waited for a CPU
        self._task: asyncio.Task | None = None

    def _note(self, column: int, seconds: float) -> None:
        bucket = self.series.setdefault(int(time.monotonic() - self.started), [0.0, 0.0])
        bucket[column] = max(bucket[column], seconds * 1000)

    def late(self, seconds: float) -> None:
        """The world carried out an event ``seconds`` after it was due (the driver calls this)."""
        if seconds > 0:
            self.lateness.record_value(min(MAX_US, max(1, round(seconds * 1e6))))
            self._note(1, seconds)

    async def _probe(self) -> None:
        psi = (time.monotonic(), cpu_stalled_us())
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(PROBE_S)
            stall = max(0.0, time.perf_counter() - asked - PROBE_S)
            self.stalls.record_value(min(MAX_US, max(1, round(stall * 1e6))))
            self._note(0, stall)
            if psi[1] is not None and time.monotonic() - psi[0] >= 1.0:
                psi = self._pressure(*psi)

    def _pressure(self, since: float, stalled_us: int) -> tuple[float, int | None]:
        now, total = time.monotonic(), cpu_stalled_us()
        if total is not None:
            share = (total - stalled_us) / ((now - since) * 1e6)
            self.pressure[int(now - self.started) - 1] = round(min(100.0, max(0.0, 100 * share)), 1)
        return now, total

    def start(self) -> None:
        self.started, self.started_wall = time.monotonic(), time.time()
        self._task = asyncio.get_running_loop().create_task(self._probe(), name="returns-harness-selfwatch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> dict[str, Any]:
        def ms(h: HdrHistogram) -> dict[str, float | int]:
            count = h.get_total_count()
            return {"count": count, **{f"p{p}": round(h.get_value_at_percentile(p) / 1000, 1) if count else 0.0 for p in (50, 95, 99)},
                    "max": round(h.get_max_value() / 1000, 1) if count else 0.0}

        return {"loop_stall_ms": ms(self.stalls), "world_late_ms": ms(self.lateness), "started_wall": self.started_wall,
                "series": [[t, round(a, 1), round(b, 1)] for t, (a, b) in sorted(self.series.items())],
                **({"cpu_pressure": sorted(self.pressure.items())} if self.pressure else {})}


def distortion(harness: dict[str, Any] | None, sla: dict[str, Any], clock: str, time_scale: float) -> float:
    """How much of an SLA's observed value (in its own unit) the harness's lateness could account for."""
    if not harness:
        return 0.0
    stall, late = harness["loop_stall_ms"], harness["world_late_ms"]
    per_unit = {"ms": 0.001, "hours": 3600.0, "days": 86_400.0}[sla["unit"]]
    if sla["unit"] == "ms":
        seconds = stall["p99"] / 1000  # a stalled loop delays sending and reading alike
    elif clock == "business":
        seconds = max(stall["p95"], late["p95"]) / 1000 * time_scale  # compressed like the layer's own work
    else:
        seconds = stall["max"] / 1000  # only the fakes' answers to the layer, at face value
    return seconds / per_unit


def is_behind(harness: dict[str, Any] | None) -> bool:
    return bool(harness) and harness["loop_stall_ms"]["p99"] > BEHIND_MS


def advice(harness: dict[str, Any]) -> str:
    stall, late = harness["loop_stall_ms"], harness["world_late_ms"]
    return (f"the harness fell behind on this machine: its event loop stalled up to {stall['max']:g} ms (p99 {stall['p99']:g} ms) "
            f"and its world ran up to {late['max']:g} ms late. Run on a quieter machine, or give the run more wall time with "
            "--time-scale (half the scenario's value doubles it)")
