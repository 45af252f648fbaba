"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>``.

A secret is either ``whsec_<base64>`` (the base64 part is the key, as the Standard Webhooks
libraries read it) or any other string (its UTF-8 bytes are the key). During a secret rotation a
delivery carries several space-separated signatures; a receiver accepts it if any one matches.

The reference integration layer does not import this module (it is built from docs/CONTRACT.md
alone); tests and docs use :func:`verify` to check what the world sends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300  # Standard Webhooks: 5 minutes either way


class SignatureError(ValueError):
    """A delivery whose signature headers are missing, stale or do not match."""


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key of a secret: base64-decoded after ``whsec_``, else the string's UTF-8 bytes."""
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret[len(PREFIX) :], validate=True)
        except binascii.Error:
            raise ValueError(f"a secret starting with {PREFIX!r} must continue in base64") from None
    if not secret:
        raise ValueError("the webhook secret is empty")
    return secret.encode()


def derived_key(key: bytes, purpose: str) -> bytes:
    """Another key, fixed for a given key and purpose (a forged secret, a previous secret)."""
    return hashlib.sha256(purpose.encode() + b"|" + key).digest()


def sign(msg_id: str, timestamp: int, body: bytes, key: bytes) -> str:
    """One signature, ``v1,<base64>``."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(msg_id: str, timestamp: int, body: bytes, keys: Iterable[bytes]) -> str:
    """The ``webhook-signature`` value: one signature per key, space-separated, in key order."""
    return " ".join(sign(msg_id, timestamp, body, key) for key in keys)


def verify(headers: Mapping[str, str], body: bytes, secret: str | bytes, now_unix: float, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
    """Check a delivery as a Standard Webhooks receiver would; raise :class:`SignatureError` if not."""
    lower = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lower.get(h)]
    if missing:
        raise SignatureError(f"missing header(s): {', '.join(missing)}")
    msg_id, raw_ts = lower["webhook-id"], lower["webhook-timestamp"]
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {raw_ts!r} is not Unix seconds") from None
    if abs(now_unix - timestamp) > tolerance_s:
        raise SignatureError(f"webhook-timestamp {timestamp} is {now_unix - timestamp:+.0f} s away from now, more than the {tolerance_s:g} s tolerated")
    expected = sign(msg_id, timestamp, body, secret_key(secret)).encode()
    candidates = lower["webhook-signature"].split()
    if not any(c.startswith("v1,") for c in candidates):
        raise SignatureError("webhook-signature holds no v1 signature")
    if not any(hmac.compare_digest(c.encode(), expected) for c in candidates):
        raise SignatureError(f"no signature of the {len(candidates)} given matches the secret")
