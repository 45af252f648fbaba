"""Signed webhook deliveries as the world's senders make them (docs/CONTRACT.md, "Events").

The envelope and the Standard Webhooks headers are byte for byte what the world's Deliverer
sends: the same signing code, and the same JSON (orjson, datetimes in UTC with ``Z``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from simulators.delivery.signing import secret_key, sign


class Signer:
    def __init__(self, secret: str) -> None:
        self.key = secret_key(secret)

    def headers(self, event_id: str, body: bytes, correlation_id: str) -> dict[str, str]:
        # Signed at each attempt: the timestamp is wall time and a receiver allows 5 minutes.
        timestamp = int(time.time())
        return {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(event_id, timestamp, body, self.key),
            "x-correlation-id": correlation_id,
        }


def envelope(event_id: str, event_type: str, occurred_at: datetime, correlation_id: str, data: dict) -> bytes:
    return orjson.dumps({"id": event_id, "type": event_type, "occurred_at": occurred_at, "correlation_id": correlation_id,
                         "data": data}, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


class BusinessClock:
    """The fakes' business time, as a load generator on any machine can tell it: calibrated on
    the first document a fake stamped (the fakes' clock runs at wall speed from the epoch)."""

    def __init__(self) -> None:
        self._offset: timedelta | None = None

    def calibrate(self, stamped: str) -> None:
        if self._offset is None:
            self._offset = datetime.fromisoformat(stamped) - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + (self._offset or timedelta())
