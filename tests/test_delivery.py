"""Delivery of events to the integration layer: signed webhooks over real loopback sockets.

A tiny scheduler maps simulated time onto the asyncio loop at 10,000 simulated seconds per wall
second (or more), so retry schedules of hours pass in milliseconds. Tests that check signatures
run at 100x: the 5-minute tolerance is in business time, which would be 30 ms of wall time at
10,000x. The receiver is a raw ASGI
app under uvicorn on 127.0.0.1, scripted answer by answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import orjson
import pytest
import uvicorn

from simulators.delivery import (
    SCHEDULES,
    Deliverer,
    DeliveryOptions,
    Event,
    HttpTransport,
    Outcome,
    SignatureError,
    jsonl_sink,
    parse_retry_after,
    schedule,
    secret_key,
    sign,
    verify,
)
from simulators.serving import _bind, _Server

EPOCH = datetime(2026, 12, 26, tzinfo=UTC)
SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3RzLW9ubHk="  # base64 of "secret-key-for-the-tests-only"
OLD_SECRET = "the-previous-secret"
WAIT_S = 5.0  # bound on every wait in these tests
SIGNING_SCALE = 100  # simulated seconds per wall second where signatures are verified on arrival


class LoopScheduler:
    """Simulated time on an asyncio loop: ``time_scale`` simulated seconds per wall second."""

    def __init__(self, time_scale: float, epoch: datetime = EPOCH) -> None:
        self.epoch = epoch
        self.time_scale = time_scale
        self._loop = asyncio.get_running_loop()
        self._start = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._start) * self.time_scale

    def call_at(self, sim_seconds: float, fn: Callable[[], None]) -> None:
        self._loop.call_later(max(0.0, (sim_seconds - self.now()) / self.time_scale), fn)


@dataclass(frozen=True)
class Reply:
    status: int = 204
    retry_after: str | None = None
    hang: bool = False  # hold the request until the test releases it


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at_unix: float  # wall time
    now_unix: float  # the receiver's clock when it arrived: what it checks the timestamp against


class Receiver:
    """A scripted webhook endpoint: answers from ``script`` in order, then ``default``."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.received: list[Received] = []
        self.release = asyncio.Event()
        self.clock: Callable[[], float] = time.time

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["path"], headers, body, time.time(), self.clock()))
        reply = self.script.popleft() if self.script else self.default
        if reply.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), WAIT_S)
        out = [(b"content-length", b"0")]
        if reply.retry_after is not None:
            out.append((b"retry-after", reply.retry_after.encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": out})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def harness(*, time_scale: float = 10_000, url_for=None, **options):
    """A receiver on a free loopback port and a deliverer pointed at it."""
    receiver = Receiver()
    sock = _bind("127.0.0.1", 0, "receiver")  # listening already: no need to wait for start-up
    server = _Server(uvicorn.Config(receiver, log_level="warning", access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    transport = HttpTransport()
    scheduler = LoopScheduler(time_scale)
    deliverer = Deliverer(
        scheduler,
        transport,
        url_for=url_for(base) if url_for else f"{base}/webhooks",
        secret=SECRET,
        **{"timeout_s": 2.0, **options},
    )
    try:
        yield deliverer, receiver
    finally:
        receiver.release.set()
        await transport.aclose()
        server.should_exit = True
        await asyncio.wait_for(serving, WAIT_S)


def event(n: int = 1, type_: str = "return.created", **data) -> Event:
    return Event(
        id=f"evt_{n:06d}",
        type=type_,
        occurred_at=datetime(2026, 12, 27, 10, 30, tzinfo=timezone(timedelta(hours=1))),
        correlation_id=f"RET-{n:06d}",
        data={"return_id": f"RET-{n:06d}", "requested_at": datetime(2026, 12, 27, 9, 0, tzinfo=UTC), **data},
    )


def hog_the_loop(seconds: float) -> None:
    """Keep the event loop busy, as a CPU-bound handler would: nothing else runs meanwhile."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run(coro):
    return asyncio.run(coro)


def now_unix(deliverer: Deliverer) -> float:
    return time.time()


# -- signing, schedules, parsing (no sockets) -------------------------------------------------


def test_signature_matches_the_standard_webhooks_test_vector():
    key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, key) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp": "1614265330",
               "Webhook-Signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    verify(headers, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now_unix=1614265330 + 299)
    with pytest.raises(SignatureError, match="tolerated"):
        verify(headers, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now_unix=1614265330 + 301)
    with pytest.raises(SignatureError, match="no signature"):
        verify(headers, body + b" ", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now_unix=1614265330)
    with pytest.raises(SignatureError, match="missing header"):
        verify({"webhook-id": "x"}, body, "s", now_unix=0)
    with pytest.raises(SignatureError, match="Unix seconds"):
        verify({**headers, "Webhook-Timestamp": "yesterday"}, body, "s", now_unix=0)
    with pytest.raises(SignatureError, match="no v1"):
        verify({**headers, "Webhook-Signature": "v2,abc"}, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now_unix=1614265330)


def test_secrets_whsec_is_base64_plain_is_utf8():
    assert secret_key("whsec_aGVsbG8=") == b"hello"
    assert secret_key("hello") == b"hello"
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_not base64!")


def test_schedules_match_the_platforms_and_unknown_names_say_the_choices():
    assert schedule("standard-webhooks") == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    shopify, stripe = SCHEDULES["shopify"], SCHEDULES["stripe"]
    assert len(shopify) == 9 and 3.5 * 3600 <= sum(shopify) <= 4.5 * 3600  # first try + 8 retries over ~4 h
    assert 2.5 * 86400 <= sum(stripe) <= 3 * 86400  # up to 3 days
    for delays in SCHEDULES.values():
        assert delays[0] == 0 and all(b >= a for a, b in pairwise(delays[1:]))  # backing off
    with pytest.raises(ValueError, match="standard-webhooks, shopify, stripe"):
        schedule("hourly")
    assert schedule([0, 1.5]) == (0.0, 1.5)


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_unix=datetime(2015, 10, 21, 7, 27, tzinfo=UTC).timestamp()) == 60.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_body_is_deterministic_and_malformed_is_broken_json():
    a, b = event(), event()
    assert a.body() == b.body()
    envelope = orjson.loads(a.body())
    assert envelope["occurred_at"] == "2026-12-27T09:30:00Z"  # business time, in UTC
    from simulators.delivery import malformed

    broken = malformed(a.body())
    assert broken == malformed(b.body()) and a.body().startswith(broken)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(broken)


# -- over real sockets ----------------------------------------------------------------------


def test_envelope_and_headers_reach_the_endpoint_of_the_event_type():
    async def main():
        async with harness(time_scale=SIGNING_SCALE, url_for=lambda base: (lambda t: f"{base}/hooks/{t}")) as (deliverer, receiver):
            before = now_unix(deliverer)
            deliverer.submit(event(7, resolution="refund"))
            assert await deliverer.drained(WAIT_S)
            after = now_unix(deliverer)
            [got] = receiver.received
            assert got.path == "/hooks/return.created"
            assert got.headers["content-type"] == "application/json"
            assert got.headers["webhook-id"] == "evt_000007"
            assert got.headers["x-correlation-id"] == "RET-000007"
            assert int(before) <= int(got.headers["webhook-timestamp"]) <= after  # wall time: receivers check it against their clock
            assert orjson.loads(got.body) == {
                "id": "evt_000007",
                "type": "return.created",
                "occurred_at": "2026-12-27T09:30:00Z",
                "correlation_id": "RET-000007",
                "data": {"return_id": "RET-000007", "requested_at": "2026-12-27T09:00:00Z", "resolution": "refund"},
            }
            verify(got.headers, got.body, SECRET, now_unix=got.now_unix)
            [attempt] = deliverer.journal
            assert (attempt.attempt, attempt.status, attempt.final) == (1, 204, Outcome.DELIVERED)
            assert deliverer.stats()["by_type"]["return.created"]["delivered"] == 1

    run(main())


def test_signature_fails_with_a_wrong_secret_or_a_skewed_timestamp():
    async def main():
        async with harness(time_scale=SIGNING_SCALE) as (deliverer, receiver):
            deliverer.submit(event(1))
            deliverer.submit(event(2), DeliveryOptions(wrong_secret=True, fault="forged"))
            deliverer.submit(event(3), DeliveryOptions(timestamp_skew_s=-600, fault="clock-skew"))
            assert await deliverer.drained(WAIT_S)
            by_id = {r.headers["webhook-id"]: r for r in receiver.received}
            now = by_id["evt_000003"].now_unix
            verify(by_id["evt_000001"].headers, by_id["evt_000001"].body, SECRET, now)
            with pytest.raises(SignatureError, match="no signature"):
                verify(by_id["evt_000001"].headers, by_id["evt_000001"].body, "another-secret", now)
            with pytest.raises(SignatureError, match="no signature"):
                verify(by_id["evt_000002"].headers, by_id["evt_000002"].body, SECRET, now)
            with pytest.raises(SignatureError, match="tolerated"):
                verify(by_id["evt_000003"].headers, by_id["evt_000003"].body, SECRET, now)
            verify(by_id["evt_000003"].headers, by_id["evt_000003"].body, SECRET, now - 600)  # only the time is off
            assert {a.event_id: a.fault for a in deliverer.journal} == {"evt_000001": None, "evt_000002": "forged", "evt_000003": "clock-skew"}

    run(main())


def test_rotation_carries_two_signatures_and_either_secret_verifies():
    async def main():
        async with harness(time_scale=SIGNING_SCALE, old_secret=OLD_SECRET) as (deliverer, receiver):
            deliverer.submit(event(), DeliveryOptions(rotated=True, fault="rotation"))
            assert await deliverer.drained(WAIT_S)
            [got] = receiver.received
            signatures = got.headers["webhook-signature"].split(" ")
            assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
            now = got.now_unix
            ts = int(got.headers["webhook-timestamp"])
            assert signatures[0] == sign(got.headers["webhook-id"], ts, got.body, secret_key(OLD_SECRET))  # old first
            verify(got.headers, got.body, OLD_SECRET, now)
            verify(got.headers, got.body, SECRET, now)
            with pytest.raises(SignatureError):
                verify(got.headers, got.body, "neither-secret", now)

    run(main())


def test_5xx_is_retried_on_the_schedule_then_delivered_with_the_same_id():
    async def main():
        async with harness() as (deliverer, receiver):
            receiver.script.extend([Reply(500), Reply(502), Reply(503)])
            deliverer.submit(event())
            assert await deliverer.drained(WAIT_S)
            journal = deliverer.journal
            assert [a.attempt for a in journal] == [1, 2, 3, 4]
            assert [a.status for a in journal] == [500, 502, 503, 204]
            assert [a.final for a in journal] == [Outcome.RETRY] * 3 + [Outcome.DELIVERED]
            delays = SCHEDULES["standard-webhooks"]
            assert [a.delay_s for a in journal] == list(delays[:4])
            for previous, attempt in pairwise(journal):  # each one the schedule's delay after the last ended
                assert attempt.intended_at_sim == pytest.approx(previous.ended_at_sim + attempt.delay_s, abs=1e-6)
            assert {r.headers["webhook-id"] for r in receiver.received} == {"evt_000001"}
            stats = deliverer.stats()
            assert (stats["delivered"], stats["retried"], stats["failed"], stats["attempts"]) == (1, 3, 0, 4)

    run(main())


def test_429_retry_after_is_honoured_in_wall_seconds():
    async def main():
        async with harness() as (deliverer, receiver):
            receiver.script.append(Reply(429, retry_after="1"))
            deliverer.submit(event())
            assert await deliverer.drained(WAIT_S)
            first, second = deliverer.journal
            assert (first.status, first.final, second.status) == (429, Outcome.RETRY, 204)
            assert second.delay_s == 1 * deliverer.scheduler.time_scale  # 1 wall second, not the schedule's 5 s
            assert receiver.received[1].at_unix - receiver.received[0].at_unix >= 0.95

    run(main())


def test_410_disables_the_endpoint_and_nothing_more_is_sent_to_it():
    def routes(base):
        return lambda t: f"{base}/gone" if t == "return.created" else f"{base}/alive"

    async def main():
        async with harness(url_for=routes) as (deliverer, receiver):
            receiver.script.append(Reply(410))
            deliverer.submit(event(1))
            assert await deliverer.drained(WAIT_S)
            deliverer.submit(event(2))
            deliverer.submit(event(3, type_="tracking.updated"))
            assert await deliverer.drained(WAIT_S)
            assert [r.path for r in receiver.received] == ["/gone", "/alive"]
            finals = {a.event_id: (a.status, a.final, a.sent_at_wall is not None) for a in deliverer.journal}
            assert finals == {
                "evt_000001": (410, Outcome.DISABLED, True),
                "evt_000002": (None, Outcome.DISABLED, False),
                "evt_000003": (204, Outcome.DELIVERED, True),
            }
            stats = deliverer.stats()
            assert stats["disabled_endpoints"] == [deliverer._url_for("return.created")]
            assert stats["disabled"] == 2 and stats["delivered"] == 1

    run(main())


def test_a_slow_answer_counts_as_none_and_causes_a_redelivery():
    async def main():
        async with harness(timeout_s=0.2) as (deliverer, receiver):
            receiver.script.append(Reply(hang=True))
            deliverer.submit(event())
            assert await deliverer.drained(WAIT_S)
            first, second = deliverer.journal
            assert first.status is None and "timeout" in first.error and first.final is Outcome.RETRY
            assert second.status == 204 and second.final is Outcome.DELIVERED
            assert [r.headers["webhook-id"] for r in receiver.received] == ["evt_000001"] * 2  # a duplicate
            assert deliverer.latency.get_total_count() == 1  # only the answered attempt

    run(main())


def test_gives_up_after_the_last_attempt_of_the_schedule():
    async def main():
        async with harness(time_scale=1_000_000) as (deliverer, receiver):
            receiver.default = Reply(500)
            deliverer.submit(event(), DeliveryOptions(fault="endpoint-down"))
            assert await deliverer.drained(WAIT_S)
            n = len(SCHEDULES["standard-webhooks"])
            assert [a.attempt for a in deliverer.journal] == list(range(1, n + 1))
            assert [a.final for a in deliverer.journal] == [Outcome.RETRY] * (n - 1) + [Outcome.GAVE_UP]
            assert len(receiver.received) == n
            stats = deliverer.stats()
            assert (stats["failed"], stats["delivered"], stats["pending"]) == (1, 0, 0)
            assert stats["by_type"]["return.created"]["statuses"] == {"500": n}

    run(main())


def test_malformed_option_sends_broken_json_signed_as_sent():
    async def main():
        async with harness(time_scale=SIGNING_SCALE) as (deliverer, receiver):
            deliverer.submit(event(), DeliveryOptions(malformed=True, fault="malformed"))
            assert await deliverer.drained(WAIT_S)
            [got] = receiver.received
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(got.body)
            assert event().body().startswith(got.body)
            verify(got.headers, got.body, SECRET, got.now_unix)  # the signature is not what is wrong

    run(main())


def test_latency_is_open_loop_one_value_per_answer_and_corrected_at_least_uncorrected():
    async def main():
        async with harness() as (deliverer, receiver):
            receiver.script.extend([Reply(500), Reply(204)])
            for n in range(1, 6):
                deliverer.submit(event(n))
            # The sender's loop stalls for 150 ms right after the events fell due (a stall injected on
            # purpose, not a wait): an open-loop measurement must charge it to the deliveries.
            hog_the_loop(0.15)
            assert await deliverer.drained(WAIT_S)
            answered = [a for a in deliverer.journal if a.status is not None]
            assert len(answered) == 6 and deliverer.latency.get_total_count() == 6
            assert deliverer.latency_uncorrected.get_total_count() == 6
            p = deliverer.latency_percentiles()
            for key in ("p50", "p90", "p99", "max"):
                assert p["corrected"][key] >= p["uncorrected"][key]
            assert p["corrected"]["p50"] >= 150 > p["uncorrected"]["p50"]
            first_attempts = [a for a in answered if a.attempt == 1]
            assert all(a.latency_ms >= 150 and a.latency_ms >= a.round_trip_ms for a in first_attempts)

    run(main())


def test_drained_is_false_while_an_attempt_is_in_flight_and_true_once_done():
    async def main():
        async with harness(timeout_s=WAIT_S) as (deliverer, receiver):
            assert await deliverer.drained(0.01)  # nothing to do
            receiver.script.append(Reply(hang=True))
            deliverer.submit(event())
            assert not await deliverer.drained(0.05)
            assert deliverer.pending == 1
            receiver.release.set()
            assert await deliverer.drained(WAIT_S)
            assert deliverer.pending == 0 and deliverer.journal[0].final is Outcome.DELIVERED

    run(main())


def test_journal_sink_streams_attempts_instead_of_keeping_them():
    async def main():
        stream = io.BytesIO()
        async with harness(journal_sink=jsonl_sink(stream)) as (deliverer, receiver):
            receiver.script.append(Reply(500))
            deliverer.submit(event())
            assert await deliverer.drained(WAIT_S)
            assert deliverer.journal == []
            lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
            assert [(x["attempt"], x["status"], x["final"]) for x in lines] == [(1, 500, "will retry"), (2, 204, "delivered")]

    run(main())
