"""The ASGI layer every fake runs its API behind; the order of the steps is the point.

    journal -> rejecting faults -> auth -> query check -> idempotency -> latency -> handler -> lost response

- Rejecting faults (outage, 5xx, 429s, token expiry) come first: a system that is down does
  not look at your token.
- Idempotency sits inside auth (keys are scoped per caller) and outside the handler.
- Latency comes after the key is reserved, so a client that retries a slow request with the
  same key meets a 409, as it would at Stripe.
- A lost response (commit-then-lose) happens after the idempotency layer stored the result:
  the write is committed and remembered, only the client never hears of it. A retry with the
  same key gets the stored answer; a retry without one writes a second document.
- The journal wraps it all and records what was finally answered (or that it was lost).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulators.fakekit.idempotency import fingerprint
from simulators.fakekit.journal import clip_body
from simulators.fakekit.problems import Problem

if TYPE_CHECKING:
    from simulators.clock import Clock
    from simulators.fakekit.routes import RouteTable
    from simulators.fakekit.system import FakeSystem

EXEMPT_PREFIXES = ("/__admin", "/docs", "/redoc", "/openapi.json", "/healthz", "/clock")
CREDENTIAL_PATHS = frozenset({"/oauth/token"})  # their bodies carry a client secret, their answers a token
REDACTED = "[redacted: credentials]"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class CallContext:
    """Who called and on behalf of which return; handlers stamp documents with it."""

    principal: str | None
    correlation_id: str | None
    idempotency_key: str | None

    def stamp(self, clock: Clock) -> dict[str, Any]:
        """The fields every created document records, for the oracle to reconcile against."""
        return {
            "created_at": clock.now(),
            "created_by": self.principal,
            "correlation_id": self.correlation_id,
            "idempotency_key": self.idempotency_key,
        }


MAX_BODY_BYTES = 1 << 20  # a document of these APIs is a few KB; a megabyte is a mistake or an attack
TOO_LARGE = Problem(413, "request-too-large", f"The request body is over {MAX_BODY_BYTES:,} bytes; nothing was read or changed.",
                    title="Request body too large")


async def _read_body(receive, declared: bytes | None) -> bytes | Problem | None:
    """The whole request body; None when the client went away before sending all of it; a 413
    once it is over MAX_BODY_BYTES (by its Content-Length, or as it arrives)."""
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return TOO_LARGE
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return TOO_LARGE
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replaying(body: bytes, receive):
    """A receive() that hands the already-read body to the app once, then defers to the real one."""
    given = False

    async def receive_again():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


class _Recorder:
    """Passes the response on to the client and remembers what it needs for the journal."""

    def __init__(self, send, keep_body: bool) -> None:
        self._send = send
        self.keep_body = keep_body
        self.status = 0
        self.body = bytearray()

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif self.keep_body and message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        await self._send(message)


class _Buffer:
    """Holds a whole response back (to store it for idempotency, or to lose it)."""

    def __init__(self) -> None:
        self.start: dict[str, Any] | None = None
        self.body = bytearray()

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def flush(self, send, extra_headers: list[tuple[bytes, bytes]] = ()) -> None:
        start = dict(self.start)
        start["headers"] = [*start.get("headers", []), *extra_headers]
        await send(start)
        await send({"type": "http.response.body", "body": bytes(self.body), "more_body": False})


class FakePipeline:
    def __init__(self, app, system: FakeSystem, routes: RouteTable) -> None:
        self.app = app
        self.system = system
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        system = self.system
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        headers = {k: v for k, v in scope["headers"] if k in (b"authorization", b"idempotency-key", b"x-correlation-id", b"content-length")}
        authorization = _text(headers.get(b"authorization"))
        ctx = CallContext(None, _text(headers.get(b"x-correlation-id")), _text(headers.get(b"idempotency-key")))
        scope.setdefault("state", {})["call"] = ctx
        body = await _read_body(receive, headers.get(b"content-length")) if method in _BODY_METHODS else b""
        recorder = _Recorder(send, keep_body=method != "GET")
        at = system.clock.now()
        outcome: dict[str, Any] = {}
        system.hooks.in_flight += 1
        try:
            if body is None:
                # Cut off mid-body (the client crashed or timed out): not a request. Acting on the
                # fragment, or storing its 4xx under the Idempotency-Key, would turn the client's
                # correct retry into a "key reused" failure. Journalled as aborted, nothing else.
                recorder.status, outcome["aborted"] = 499, True
            elif isinstance(body, Problem):
                await body.response(path)(scope, receive, recorder)
                body = b""
            else:
                await self._handle(scope, _replaying(body, receive), recorder, ctx, authorization, body, outcome)
        finally:
            system.hooks.in_flight -= 1
            system.last_call = time.monotonic()
            route = scope.get("route")
            system.journal.record(
                {
                    "at": at,
                    "wall": time.time(),  # Retry-After and latencies are wall time; "at" is business time
                    "method": method,
                    "path": path,
                    "query": scope["query_string"].decode("latin-1"),
                    "route": getattr(route, "path", None),
                    "status": recorder.status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "principal": ctx.principal,
                    "correlation_id": ctx.correlation_id,
                    "idempotency_key": ctx.idempotency_key,
                    "body": REDACTED if path in CREDENTIAL_PATHS else clip_body(body or b""),
                    "response": REDACTED if path in CREDENTIAL_PATHS else clip_body(bytes(recorder.body)) if recorder.keep_body else None,
                    **outcome,
                }
            )

    async def _handle(self, scope, receive, send, ctx: CallContext, authorization, body: bytes, outcome) -> None:
        system = self.system
        method, path = scope["method"], scope["path"]
        rejected = system.hooks.reject(method, path)
        if rejected is not None:
            rule, problem = rejected
            outcome["fault"], outcome["fault_kind"] = rule.id, rule.kind.value
            problem = problem or system.auth.expire(authorization)
            if "Retry-After" in problem.headers:  # the oracle checks the caller waited that long
                outcome["retry_after_s"] = float(problem.headers["Retry-After"])
            await problem.response(path)(scope, receive, send)
            return
        try:
            if path not in system.public_paths:
                ctx.principal = system.auth.authenticate(authorization)
            if scope["query_string"]:
                self.routes.check_query(method, path, scope["query_string"])
            key = ctx.idempotency_key if method == "POST" else None
            stored = system.idempotency.begin(ctx.principal or "", key, fingerprint(method, path, body)) if key is not None else None
        except Problem as problem:
            await problem.response(path)(scope, receive, send)
            return
        if stored is not None:
            outcome["replayed"] = True
            await send({"type": "http.response.start", "status": stored.status, "headers": [*stored.headers, (b"idempotent-replayed", b"true")]})
            await send({"type": "http.response.body", "body": stored.body, "more_body": False})
            return

        hooks = system.hooks
        delay = hooks.latency_s(method, path) if hooks.rules else 0
        if delay:
            outcome["latency_ms"], outcome["fault_kind"] = round(delay * 1000), "latency"
            await asyncio.sleep(delay)

        may_lose = hooks.may_lose() if hooks.rules else False
        if key is None and not may_lose:
            await self.app(scope, receive, send)
            return
        held = _Buffer()
        try:
            await self.app(scope, receive, held)
        except BaseException:
            if key is not None:
                system.idempotency.release(ctx.principal or "", key)
            raise
        if key is not None:
            system.idempotency.complete(ctx.principal or "", key, held.start["status"], held.start.get("headers", []), bytes(held.body))
        rule = hooks.lose(method, path) if may_lose else None
        if rule is None:
            await held.flush(send)
            return
        outcome["fault"], outcome["fault_kind"] = rule.id, rule.kind.value
        outcome["lost"] = True
        if rule.lose == "delay":
            await asyncio.sleep(rule.delay_ms / 1000)
            await held.flush(send)
        else:
            # Headers out, body never: the server closes the connection mid-response, so the
            # client sees a broken response whatever its status line said.
            await send(held.start)


def _text(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None
