"""Outbound events to the integration layer: envelope, signing, retries, journal, latency.

- :mod:`.signing`: Standard Webhooks signatures and :func:`verify`.
- :mod:`.schedules`: retry schedules of real platforms (Standard Webhooks, Shopify, Stripe).
- :mod:`.transport`: the :class:`Transport` interface, :class:`HttpTransport` (httpx) and
  :class:`Transports` (one per URL scheme).
- :mod:`.deliverer`: :class:`Deliverer`, which schedules, sends, retries and journals.
"""

from simulators.delivery.deliverer import (
    LATENCY_UNIT,
    Attempt,
    Deliverer,
    DeliveryOptions,
    Event,
    Outcome,
    Scheduler,
    jsonl_sink,
    malformed,
)
from simulators.delivery.schedules import SCHEDULES, schedule
from simulators.delivery.signing import (
    SignatureError,
    secret_key,
    sign,
    signature_header,
    verify,
)
from simulators.delivery.transport import (
    Answer,
    HttpTransport,
    Transport,
    Transports,
    parse_retry_after,
)

__all__ = [
    "LATENCY_UNIT",
    "SCHEDULES",
    "Answer",
    "Attempt",
    "Deliverer",
    "DeliveryOptions",
    "Event",
    "HttpTransport",
    "Outcome",
    "Scheduler",
    "SignatureError",
    "Transport",
    "Transports",
    "jsonl_sink",
    "malformed",
    "parse_retry_after",
    "schedule",
    "secret_key",
    "sign",
    "signature_header",
    "verify",
]
