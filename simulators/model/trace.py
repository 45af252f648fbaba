"""The trace of a run: one JSON line per thing that happened, in simulated time only.

Streamed as it is written (a million returns must not sit in memory) and free of wall time,
so that the same scenario and seed give a byte-identical file.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import IO, Any

import orjson


class Trace:
    def __init__(self, epoch: datetime, sink: IO[bytes] | None = None) -> None:
        self.epoch = epoch
        self.sink = sink
        self.counts: Counter[str] = Counter()

    def emit(self, t: float, kind: str, **fields: Any) -> None:
        self.counts[kind] += 1
        if self.sink is not None:
            record = {"t": round(t, 3), "at": self.epoch + timedelta(seconds=t), "kind": kind, **fields}
            self.sink.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z) + b"\n")
