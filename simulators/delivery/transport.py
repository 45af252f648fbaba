"""How a delivery reaches the integration layer: a transport interface, and HTTP through httpx.

A transport sends one body and reports what came back; it neither retries nor times the attempt
(the deliverer does both). A channel other than webhooks is a transport too (the message broker:
:mod:`simulators.channels.broker`; batch files: :mod:`simulators.channels.batch`); :class:`Transports`
picks one by the URL's scheme. A transport that delivers only at set times (a nightly export)
also has ``slot(url, at_sim)``: the first of its times at or after ``at_sim``.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from dataclasses import dataclass
from typing import Protocol

import httpcore  # noqa: F401  (httpx imports it on the first client: ~50 ms, not on the first delivery)
import httpx


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got back. ``status`` None: no answer (timeout, refused, broken connection)."""

    status: int | None
    retry_after_s: float | None = None  # wall seconds, from a Retry-After header
    error: str | None = None
    # Whether the layer itself gave this answer. A broker's publisher confirm (202) is the broker's:
    # the layer acknowledges to the broker, so its latency is not timed and its absence is not the
    # layer's silence.
    by_layer: bool = True
    # What the channel itself did to this attempt (a batch file cut short: "truncated"), journaled
    # as the attempt's fault in place of the fault plan's.
    fault: str | None = None


class Transport(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Answer: ...


def parse_retry_after(value: str | None, now_unix: float | None = None) -> float | None:
    """Retry-After as wall seconds from now: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now_unix is None else now_unix))


class HttpTransport:
    """POST through one pooled ``httpx.AsyncClient``, created lazily on the running loop."""

    def __init__(self, *, max_connections: int = 256, max_keepalive: int = 64, verify: ssl.SSLContext | bool = True) -> None:
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
        # Built here, not on the first send: loading the CA bundle takes tens of milliseconds, which
        # would delay (and, at a high time_scale, age the signature timestamp of) the first delivery.
        self._verify = httpx.create_ssl_context() if verify is True else verify
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=self._limits, verify=self._verify, follow_redirects=False, trust_env=False)
        return self._client

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Answer:
        try:
            response = await self._get_client().post(url, content=body, headers=headers, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            return Answer(None, None, f"timeout: no answer within {timeout_s:g} s ({type(exc).__name__})")
        except httpx.ConnectError as exc:
            return Answer(None, None, f"cannot connect to {url}: {exc}")
        except httpx.HTTPError as exc:
            return Answer(None, None, f"{type(exc).__name__}: {exc}")
        retry_after = parse_retry_after(response.headers.get("retry-after")) if response.status_code in (429, 503) else None
        return Answer(response.status_code, retry_after, None)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class Transports:
    """One transport per URL scheme (``http``/``https`` by default), for deliveries that travel by
    several channels in one run."""

    def __init__(self, by_scheme: dict[str, Transport]) -> None:
        self.by_scheme = by_scheme
        self._slots = {scheme: t.slot for scheme, t in by_scheme.items() if hasattr(t, "slot")}
        if not self._slots:
            self.slot = None  # no channel with set times: the deliverer need not ask

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Answer:
        transport = self.by_scheme.get(url.partition("://")[0])
        if transport is None:
            return Answer(None, None, f"no transport for {url.partition('://')[0]}:// URLs")
        return await transport.send(url, headers, body, timeout_s)

    def slot(self, url: str, at_sim: float) -> float:
        slot = self._slots.get(url.partition("://")[0])
        return at_sim if slot is None else slot(url, at_sim)

    async def aclose(self) -> None:
        for transport in {id(t): t for t in self.by_scheme.values()}.values():
            await transport.aclose()
