"""``Idempotency-Key`` on POST, with the semantics of the IETF httpapi draft and Stripe.

- same key, same request   -> the first response is replayed (``Idempotent-Replayed: true``);
- same key, other request  -> 422;
- same key still in flight -> 409;
- a 5xx is not remembered, so the client may retry with the same key.
The key is optional: like a real ERP, a write without one is simply executed (and a duplicate
write creates a duplicate document). Keys live 24 hours of wall-clock time, and at most
``max_keys`` are kept (oldest dropped first) so a soak cannot exhaust memory.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

from simulators.clock import Clock, technical_seconds
from simulators.fakekit.problems import Problem

KEY_TTL_S = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass
class StoredResponse:
    fingerprint: str
    created_at: float
    done: bool = False
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class IdempotencyStore:
    def __init__(self, clock: Clock, max_keys: int = 200_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._entries: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()

    def begin(self, principal: str, key: str, print_: str) -> StoredResponse | None:
        """Reserve the key, or return the stored response to replay; raise 409/422 otherwise."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise Problem(
                400, "invalid-idempotency-key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters, got {len(key)}.",
            )
        self._expire()
        entry = self._entries.get((principal, key))
        if entry is not None:
            if entry.fingerprint != print_:
                raise Problem(
                    422, "idempotency-key-reused",
                    f"Idempotency-Key {key!r} was already used for a different request; use a new key for a new request.",
                )
            if not entry.done:
                raise Problem(
                    409, "idempotency-key-in-flight",
                    f"A request with Idempotency-Key {key!r} is still being processed; retry later.",
                    headers={"Retry-After": "1"},
                )
            return entry
        self._entries[(principal, key)] = StoredResponse(print_, technical_seconds(self.clock))
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
        return None

    def complete(self, principal: str, key: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        entry = self._entries.get((principal, key))
        if entry is None:
            return
        if status >= 500:
            del self._entries[(principal, key)]
            return
        entry.done, entry.status, entry.headers, entry.body = True, status, headers, body

    def release(self, principal: str, key: str) -> None:
        self._entries.pop((principal, key), None)

    def _expire(self) -> None:
        horizon = technical_seconds(self.clock) - KEY_TTL_S
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.created_at >= horizon:
                break
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
