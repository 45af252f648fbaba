"""A bounded journal of every request a fake received.

The newest ``capacity`` entries stay in memory; older ones spill to a JSON-lines file when a
spill path is given, and are otherwise only counted. Either way a long soak at thousands of
requests per second holds a fixed amount of memory (WireMock's unbounded journal does not).
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

# Bodies are evidence, not archives: keep enough to read, not a megabyte upload.
MAX_BODY_CHARS = 4096


def clip_body(raw: bytes) -> Any:
    """A request or response body as JSON when it parses, else as (truncated) text."""
    if not raw:
        return None
    if len(raw) <= MAX_BODY_CHARS:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    text = raw[:MAX_BODY_CHARS].decode("utf-8", errors="replace")
    return text + ("…" if len(raw) > MAX_BODY_CHARS else "")


class JournalQuery:
    """Filters for :meth:`Journal.find`; every given field must match."""

    def __init__(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        status: str | int | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> None:
        self.method = method.upper() if method else None
        # A path with a wildcard is a glob; otherwise a prefix.
        self.path_glob = path if path and any(c in path for c in "*?[") else None
        self.path_prefix = path if path and not self.path_glob else None
        self.status = str(status).lower() if status is not None else None
        self.correlation_id = correlation_id
        self.idempotency_key = idempotency_key
        self.since = since
        self.limit = limit

    def matches(self, e: dict[str, Any]) -> bool:
        if e["seq"] <= self.since:
            return False
        if self.method and e["method"] != self.method:
            return False
        if self.path_prefix and not e["path"].startswith(self.path_prefix):
            return False
        if self.path_glob and not fnmatch.fnmatchcase(e["path"], self.path_glob):
            return False
        if self.status is not None:
            code = str(e["status"])
            if self.status.endswith("xx") and code[0] != self.status[0] or not self.status.endswith("xx") and code != self.status:
                return False
        if self.correlation_id and e["correlation_id"] != self.correlation_id:
            return False
        if self.idempotency_key and e["idempotency_key"] != self.idempotency_key:
            return False
        return True


class Journal:
    def __init__(self, capacity: int = 10_000, spill_path: Path | None = None) -> None:
        if capacity < 1:
            raise ValueError("journal capacity must be at least 1")
        self.capacity = capacity
        self.spill_path = spill_path
        self._entries: deque[dict[str, Any]] = deque()
        self._seq = itertools.count(1)
        self._spill = None
        self.spilled = 0
        self.summary: Counter[tuple[str, str, int]] = Counter()  # (method, route, status) -> count

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry["seq"] = next(self._seq)
        self._entries.append(entry)
        self.summary[(entry["method"], entry.get("route") or entry["path"], entry["status"])] += 1
        if len(self._entries) > self.capacity:
            self._evict(self._entries.popleft())
        return entry

    def _evict(self, entry: dict[str, Any]) -> None:
        self.spilled += 1
        if self.spill_path is None:
            return
        if self._spill is None:
            self.spill_path.parent.mkdir(parents=True, exist_ok=True)
            self._spill = self.spill_path.open("ab")
        self._spill.write(orjson.dumps(entry) + b"\n")

    def flush(self) -> None:
        if self._spill is not None:
            self._spill.flush()

    def iter_all(self) -> Iterator[dict[str, Any]]:
        """Every entry still known, oldest first: the spilled ones from disk, then memory."""
        if self._spill is not None:
            self.flush()
            with self.spill_path.open("rb") as f:
                for line in f:
                    yield orjson.loads(line)
        yield from list(self._entries)

    def find(self, query: JournalQuery | None = None, *, include_spilled: bool = False) -> list[dict[str, Any]]:
        query = query or JournalQuery()
        source = self.iter_all() if include_spilled else iter(list(self._entries))
        found = (e for e in source if query.matches(e))
        return list(itertools.islice(found, query.limit)) if query.limit else list(found)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.summary.clear()
        self.spilled = 0
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        if self.spill_path is not None and self.spill_path.exists():
            self.spill_path.unlink()

    def summary_rows(self) -> list[dict[str, Any]]:
        return [
            {"method": m, "route": r, "status": s, "count": n}
            for (m, r, s), n in sorted(self.summary.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))
        ]
