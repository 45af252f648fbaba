"""HTTP clients of the four fakes: auth, correlation and idempotency headers, and errors sorted
into "try again later" (:class:`Transient`) and "this will never work" (:class:`Rejected`)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx

from reference_middleware.settings import FakeEndpoint


class CallFailed(Exception):
    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class Transient(CallFailed):
    """Timeouts, dropped connections, 5xx, 429, 409 (a request with this key still running)."""


class Rejected(CallFailed):
    """A 4xx that no retry will change: bad input, unknown document."""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


INLINE_WAIT_AT_MOST_S = 5.0  # a longer Retry-After goes back to the job queue instead of holding a worker


class FakeApi:
    """One fake system. API keys are static; the ERP's OAuth token is fetched, cached until it
    expires, and fetched again when the ERP says it is invalid.

    A 429 or 5xx is retried in place ``inline_retries`` times, after the Retry-After (or a short
    pause), as HTTP client libraries do: a refusal that clears in a second then costs a second,
    not a trip through the job queue's growing backoff."""

    def __init__(self, name: str, endpoint: FakeEndpoint, client: httpx.AsyncClient, *, inline_retries: int = 2,
                 honour_retry_after: bool = True) -> None:
        self.name, self.endpoint, self.client = name, endpoint, client
        self.inline_retries, self.honour_retry_after = inline_retries, honour_retry_after
        # Retry-After is said to this client, not to one call: every call to the system waits.
        self._not_before = 0.0
        self._token: str | None = None
        self._token_expires = 0.0
        # One fetch at a time: eight workers that meet the same expired token want one new token.
        self._token_lock = asyncio.Lock()

    async def _authorization(self, stale: str | None = None) -> str:
        """The Authorization header; ``stale`` is a token the fake refused (fetched anew unless
        another call already replaced it)."""
        if self.endpoint.api_key:
            return f"Bearer {self.endpoint.api_key}"
        async with self._token_lock:
            if self._token is None or self._token == stale or time.monotonic() >= self._token_expires:
                await self._fetch_token()
        return f"Bearer {self._token}"

    async def _fetch_token(self) -> None:
        response = await self._send("POST", self.endpoint.token_url, data={
            "grant_type": "client_credentials",
            "client_id": self.endpoint.client_id,
            "client_secret": self.endpoint.client_secret,
        })
        if response.status_code != 200:
            raise self._failure(response, "getting a token")
        body = response.json()
        self._token = body["access_token"]
        # Renew a little early so that a token does not expire between check and use.
        self._token_expires = time.monotonic() + max(1.0, float(body.get("expires_in", 60)) * 0.9)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.honour_retry_after and (pause := self._not_before - time.monotonic()) > 0:
            await asyncio.sleep(pause)
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise Transient(f"{self.name}: {method} {url} timed out") from None
        except httpx.TransportError as e:
            raise Transient(f"{self.name}: {method} {url} failed: {type(e).__name__} {e}") from None
        after = _retry_after(response) if response.status_code in (429, 503) else None
        if after is not None:
            self._not_before = max(self._not_before, time.monotonic() + after)
        return response

    async def _authorized(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        refused: str | None = None
        for attempt in range(2):
            headers["Authorization"] = await self._authorization(stale=refused)
            response = await self._send(method, url, headers=headers, **kwargs)
            # An expired or revoked OAuth token: fetch a new one once, then give up on this try.
            if response.status_code == 401 and self.endpoint.token_url and attempt == 0:
                refused = headers["Authorization"].removeprefix("Bearer ")
                continue
            break
        return response

    def _inline_wait(self, response: httpx.Response, retry: int) -> float | None:
        """How long to wait before trying ``response``'s request again in place; None: do not."""
        status = response.status_code
        if retry >= self.inline_retries or not (status == 429 or status >= 500):
            return None
        after = _retry_after(response)
        if after is None:
            after = 0.2 * 2**retry
        if after > INLINE_WAIT_AT_MOST_S:
            return None
        return after if self.honour_retry_after else 0.0

    def _failure(self, response: httpx.Response, what: str) -> CallFailed:
        status = response.status_code
        detail = response.text[:300]
        message = f"{self.name}: {what} answered {status}: {detail}"
        if status >= 500 or status in (408, 409, 425, 429):
            return Transient(message, status=status, retry_after=_retry_after(response))
        return Rejected(message, status=status)

    async def call(
        self,
        method: str,
        path: str,
        *,
        correlation_id: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The JSON answer of a 2xx; otherwise :class:`Transient` or :class:`Rejected`."""
        headers = {"X-Correlation-ID": correlation_id}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self.endpoint.url}{path}"
        for retry in range(self.inline_retries + 1):
            response = await self._authorized(method, url, headers, json=json, params=params)
            wait = self._inline_wait(response, retry)
            if wait is None:
                break
            await asyncio.sleep(wait)
        if response.is_success:
            return response.json()
        if response.status_code == 401 and self.endpoint.token_url:
            raise Transient(f"{self.name}: {method} {path} refused a fresh token", status=401)
        raise self._failure(response, f"{method} {path}")


class Fakes:
    """The four systems, each with its own connection pool: httpcore scans every pooled
    connection on each request, so one shared pool grows slower with concurrency."""

    def __init__(self, endpoints: dict[str, FakeEndpoint], timeout_s: float, *, inline_retries: int = 2, honour_retry_after: bool = True) -> None:
        def api(name: str) -> FakeApi:
            client = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=32))
            return FakeApi(name, endpoints[name], client, inline_retries=inline_retries, honour_retry_after=honour_retry_after)

        self.erp, self.wms, self.carrier, self.portal = api("erp"), api("wms"), api("carrier"), api("returns_portal")

    async def business_clock(self, url: str) -> tuple[datetime, float]:
        """The harness's business time now, and how fast it runs (business seconds a wall second)."""
        try:
            response = await self.erp.client.get(url)
            response.raise_for_status()
            body = response.json()
            return datetime.fromisoformat(body["now"]), float(body["time_scale"])
        except (httpx.HTTPError, ValueError, KeyError) as e:
            raise Transient(f"the business clock at {url}: {e}") from None

    async def aclose(self) -> None:
        for api in (self.erp, self.wms, self.carrier, self.portal):
            await api.client.aclose()
