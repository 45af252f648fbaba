"""Acknowledgement latency, open loop: from the time a request was *due*, not when it was sent.

A user on an intended schedule that falls behind (the integration layer stalled) still counts
its late requests from when they were due, so a stall shows in the percentiles instead of
hiding in the gap between requests (coordinated omission). The master keeps two HdrHistograms
(corrected and uncorrected, microseconds), recorded from the delivery attempts the load
processes ship (:meth:`load.driver.MasterSide.merge`); :meth:`AckLatency.drain` and
:meth:`AckLatency.add` encode and add up histograms for anyone who ships histograms instead.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

MAX_US = 3_600_000_000  # 1 hour
PERCENTILES = (50, 90, 95, 99, 99.9)


def histogram() -> HdrHistogram:
    return HdrHistogram(1, MAX_US, 3)


class AckLatency:
    def __init__(self) -> None:
        self.corrected = histogram()
        self.uncorrected = histogram()

    def record(self, corrected_s: float, uncorrected_s: float) -> None:
        self.corrected.record_value(min(MAX_US, max(1, round(corrected_s * 1e6))))
        self.uncorrected.record_value(min(MAX_US, max(1, round(uncorrected_s * 1e6))))

    def drain(self) -> dict[str, str] | None:
        """The samples since the last drain, encoded for a Locust message; None when none."""
        if not self.corrected.get_total_count():
            return None
        out = {"corrected": self.corrected.encode().decode(), "uncorrected": self.uncorrected.encode().decode()}
        self.corrected.reset()
        self.uncorrected.reset()
        return out

    def add(self, encoded: dict[str, str]) -> None:
        self.corrected.add(HdrHistogram.decode(encoded["corrected"]))
        self.uncorrected.add(HdrHistogram.decode(encoded["uncorrected"]))

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Percentiles in ms, corrected beside uncorrected."""

        def one(h: HdrHistogram) -> dict[str, float | int | None]:
            count = h.get_total_count()
            out: dict[str, float | int | None] = {"count": count}
            for p in PERCENTILES:
                out[f"p{p:g}"] = round(h.get_value_at_percentile(p) / 1000, 3) if count else None
            out["max"] = round(h.get_max_value() / 1000, 3) if count else None
            return out

        return {"corrected": one(self.corrected), "uncorrected": one(self.uncorrected)}
