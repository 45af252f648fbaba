"""Deliver events to the integration layer: signed webhooks, retried on a real platform's schedule.

The world hands each event to :meth:`Deliverer.submit` (synchronously, on the loop thread). Each
attempt is scheduled in *simulated* time through the world's :class:`Scheduler` and runs as an
asyncio task in *wall* time; an answer other than 2xx, or none within ``timeout_s``, schedules
the next attempt after the schedule's delay (so a slow answer causes a redelivery, a duplicate,
exactly as in production). 410 disables the URL. Every attempt is journaled, and the latency of
every answered attempt is recorded open-loop: from the wall time the attempt was *due*, not from
when the loop got round to sending it, so a stalled sender or receiver cannot hide (coordinated
omission). Nothing here draws random numbers: given the same answers, the same attempts follow.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any, Protocol

import orjson
from hdrh.histogram import HdrHistogram

from simulators.delivery.schedules import schedule as resolve_schedule
from simulators.delivery.signing import derived_key, secret_key, signature_header
from simulators.delivery.transport import Answer, Transport

# Latency histograms hold microseconds, from 1 µs to 1 h, to 3 significant digits.
LATENCY_UNIT = "us"
LATENCY_MAX_US = 3_600_000_000
PERCENTILES = (50, 90, 99)


class Scheduler(Protocol):
    """Simulated time as the world drives it. ``now`` should advance continuously in live mode."""

    epoch: datetime  # business time of simulated second 0
    time_scale: float  # simulated seconds per wall second

    def now(self) -> float: ...

    def call_at(self, sim_seconds: float, fn: Callable[[], None]) -> None: ...


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} in an event")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Event:
    """One fact for the integration layer; ``id`` stays the same on every redelivery."""

    id: str
    type: str
    occurred_at: datetime
    correlation_id: str
    data: dict

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": str(self.type),
            "occurred_at": _utc(self.occurred_at),
            "correlation_id": self.correlation_id,
            "data": self.data,
        }

    def body(self) -> bytes:
        """The envelope as JSON, byte for byte the same for the same event (datetimes in UTC, ``Z``)."""
        return orjson.dumps(self.envelope(), default=_json_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def malformed(body: bytes) -> bytes:
    """A broken payload, always the same for the same body: the JSON cut in half (at a character)."""
    text = body.decode()
    return text[: max(1, len(text) // 2)].encode()


@dataclass(frozen=True)
class DeliveryOptions:
    """How the fault plan bends one delivery; the defaults are a clean delivery."""

    delay_s: float = 0.0  # extra simulated delay before the first attempt
    malformed: bool = False  # body replaced by truncated JSON (still correctly signed)
    timestamp_skew_s: int = 0  # webhook-timestamp off by this many seconds
    wrong_secret: bool = False  # signed with a secret the receiver does not know
    rotated: bool = False  # two signatures: the old secret's, then the new one's
    fault: str | None = None  # label for the journal ("duplicate", "reordered" ...)

    @property
    def refused(self) -> bool:
        """A correct receiver must refuse this delivery (malformed, forged or stale): no layer can act on it."""
        return self.malformed or self.wrong_secret or self.timestamp_skew_s < 0


UNANSWERED_RETRY_WALL_S = 1.0  # an unanswered attempt is retried after at least this long (wall)


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "will retry"
    GAVE_UP = "gave up"
    DISABLED = "endpoint disabled"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt to deliver one event, as journaled."""

    event_id: str
    event_type: str
    correlation_id: str
    attempt: int  # 1, 2, ...
    url: str
    intended_at_sim: float  # simulated seconds: when the attempt was due
    delay_s: float  # simulated seconds waited before it (schedule, Retry-After or fault delay)
    ended_at_sim: float  # simulated seconds: when the answer (or its absence) was known
    sent_at_wall: float | None  # Unix seconds when sending started; None if not sent (endpoint disabled)
    sent_at_sim: float | None  # simulated seconds when sending started: the layer's turn begins here
    status: int | None  # None: no answer
    latency_ms: float | None  # from the intended wall send time to the answer (open loop)
    round_trip_ms: float | None  # from the actual send start to the answer
    error: str | None
    fault: str | None
    final: Outcome

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _ATTEMPT_FIELDS}


_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))


def jsonl_sink(stream: IO[bytes]) -> Callable[[Attempt], None]:
    """A journal sink writing one JSON line per attempt, for runs too long to journal in memory."""

    def write(attempt: Attempt) -> None:
        stream.write(orjson.dumps(attempt.as_dict()) + b"\n")

    return write


@dataclass(slots=True)
class _Delivery:
    event: Event
    options: DeliveryOptions
    url: str
    body: bytes
    attempts: int = 0
    intended_sim: float = 0.0
    intended_wall: float = 0.0  # perf_counter seconds
    delay_s: float = 0.0


@dataclass
class _TypeStats:
    attempts: int = 0
    delivered: int = 0
    failed: int = 0  # gave up
    retried: int = 0  # attempts after the first
    disabled: int = 0  # deliveries ended by a disabled endpoint
    statuses: Counter = field(default_factory=Counter)


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, LATENCY_MAX_US, 3)


class Deliverer:
    def __init__(
        self,
        scheduler: Scheduler,
        transport: Transport,
        *,
        url_for: Callable[[str], str] | str,
        secret: str,
        schedule: str | Sequence[float] = "standard-webhooks",
        timeout_s: float = 5.0,
        old_secret: str | None = None,
        journal_sink: Callable[[Attempt], None] | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.scheduler = scheduler
        self.transport = transport
        self._slot = getattr(transport, "slot", None)  # a channel with set delivery times (batch files)
        self._url_for = (lambda _type, url=url_for: url) if isinstance(url_for, str) else url_for
        self.delays = resolve_schedule(schedule)
        self.timeout_s = timeout_s
        self._key = secret_key(secret)
        # Without an old secret, rotation signs with one derived from the current secret: a
        # receiver that knows only the new secret must still accept the delivery.
        self._old_key = secret_key(old_secret) if old_secret else derived_key(self._key, "previous")
        self._sink = journal_sink
        self.journal: list[Attempt] = []
        self.latency = _histogram()  # corrected: from the intended send time (µs)
        self.latency_uncorrected = _histogram()  # from the actual send start (µs)
        self.pending = 0
        self.disabled: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task] = set()
        self._by_type: dict[str, _TypeStats] = {}
        # Since when every attempt went unanswered (wall, monotonic), how many, and the last error:
        # a layer that stopped answering, told apart from one that answers slowly or with errors.
        self.unanswered_since: float | None = None
        self.unanswered = 0
        self.last_error: str | None = None
        # Told of each delivery the layer acknowledged (2xx), as soon as it answers: the kill
        # nemesis aims at the moment after an acknowledgement.
        self.on_acknowledged: list[Callable[[Event], None]] = []
        # Told of each delivery once it has no attempt left (delivered, given up or disabled).
        self.on_ended: list[Callable[[Event, DeliveryOptions, Outcome], None]] = []

    # -- the world's side -------------------------------------------------------------------

    def submit(self, event: Event, options: DeliveryOptions = DeliveryOptions()) -> None:
        """Schedule the first attempt at now + ``options.delay_s`` (simulated). Never blocks."""
        body = event.body()
        delivery = _Delivery(event, options, self._url_for(event.type), malformed(body) if options.malformed else body)
        delay = max(0.0, options.delay_s) + self.delays[0]
        self._schedule(delivery, self.scheduler.now() + delay, delay)

    async def drained(self, timeout_s: float) -> bool:
        """True once no attempt is scheduled or in flight; False if that takes over ``timeout_s``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- scheduling -------------------------------------------------------------------------

    def _schedule(self, delivery: _Delivery, at_sim: float, delay_s: float) -> None:
        now = self.scheduler.now()
        at_sim = max(at_sim, now)
        if self._slot is not None:
            at_sim = self._slot(delivery.url, at_sim)  # a channel that delivers at set times: its next one
        delivery.intended_sim = at_sim
        delivery.intended_wall = time.perf_counter() + (at_sim - now) / self.scheduler.time_scale
        delivery.delay_s = delay_s
        self.pending += 1
        self._idle.clear()
        self.scheduler.call_at(at_sim, lambda: self._start(delivery))

    def _start(self, delivery: _Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._attempt(delivery), name=f"deliver-{delivery.event.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _done_one(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self._idle.set()

    # -- one attempt ------------------------------------------------------------------------

    def _headers(self, delivery: _Delivery) -> dict[str, str]:
        event, options = delivery.event, delivery.options
        # Wall time, not business time: the timestamp guards against replays, a technical
        # matter, and a receiver checks it against its own clock (5 minutes of tolerance).
        timestamp = int(time.time()) + options.timestamp_skew_s
        keys = [self._old_key, self._key] if options.rotated else [self._key]
        if options.wrong_secret:
            keys = [derived_key(k, "forged") for k in keys]
        return {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(event.id, timestamp, delivery.body, keys),
            "x-correlation-id": event.correlation_id,
        }

    async def _attempt(self, delivery: _Delivery) -> None:
        delivery.attempts += 1
        due = (delivery.intended_sim, delivery.delay_s)  # before _next schedules the following attempt
        try:
            if delivery.url in self.disabled:
                answer = Answer(None, None, "not sent: the endpoint was disabled by an earlier 410")
                self._record(delivery, due, self.scheduler.now(), (None, None), answer, None, None, Outcome.DISABLED)
                return self._ended(delivery, Outcome.DISABLED)
            headers = self._headers(delivery)
            sent_at_wall, sent_at_sim = time.time(), self.scheduler.now()
            start = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_s):
                    answer = await self.transport.send(delivery.url, headers, delivery.body, self.timeout_s)
            except TimeoutError:
                answer = Answer(None, None, f"timeout: no answer within {self.timeout_s:g} s")
            except Exception as exc:  # noqa: BLE001 - a broken transport must not wedge the delivery
                answer = Answer(None, None, f"{type(exc).__name__}: {exc}")
            end = time.perf_counter()
            ended_sim = self.scheduler.now()
            intended = min(delivery.intended_wall, start)
            corrected_us, uncorrected_us = (end - intended) * 1e6, (end - start) * 1e6
            latency_ms = corrected_us / 1000
            if answer.by_layer:
                self._heard(answer)
                if answer.status is not None:
                    self.latency.record_value(min(LATENCY_MAX_US, max(1, round(corrected_us))))
                    self.latency_uncorrected.record_value(min(LATENCY_MAX_US, max(1, round(uncorrected_us))))
            else:
                latency_ms = None  # a broker's confirm: the layer's acknowledgement is not ours to time
            outcome = self._next(delivery, answer, ended_sim)
            if outcome is Outcome.DELIVERED and answer.by_layer:
                for listener in self.on_acknowledged:
                    listener(delivery.event)
            self._record(delivery, due, ended_sim, (sent_at_wall, sent_at_sim), answer, latency_ms, uncorrected_us / 1000, outcome)
            if outcome is not Outcome.RETRY:
                self._ended(delivery, outcome)
        finally:
            self._done_one()

    def _ended(self, delivery: _Delivery, outcome: Outcome) -> None:
        for listener in self.on_ended:
            listener(delivery.event, delivery.options, outcome)

    def _heard(self, answer: Answer) -> None:
        if answer.status is not None:
            self.unanswered_since, self.unanswered = None, 0
            return
        if self.unanswered_since is None:
            self.unanswered_since = time.monotonic()
        self.unanswered += 1
        self.last_error = answer.error

    def silent_for(self) -> float:
        """Wall seconds since the layer last answered anything, counted from the first attempt it
        left unanswered (0 while it answers)."""
        return 0.0 if self.unanswered_since is None else time.monotonic() - self.unanswered_since

    def _next(self, delivery: _Delivery, answer: Answer, ended_sim: float) -> Outcome:
        """Decide what follows an answer, and schedule the next attempt if there is one."""
        status = answer.status
        if status is not None and 200 <= status < 300:
            return Outcome.DELIVERED
        if status == 410:
            self.disabled.add(delivery.url)
            return Outcome.DISABLED
        if delivery.attempts >= len(self.delays):
            return Outcome.GAVE_UP
        delay = self.delays[delivery.attempts]
        if answer.retry_after_s is not None and status in (429, 503):
            delay = max(delay, answer.retry_after_s * self.scheduler.time_scale)
        if status is None:
            # No answer: the layer is down or restarting. Its restart takes wall time, which the
            # compressed schedule must not race through (ten attempts in five wall seconds).
            delay = max(delay, UNANSWERED_RETRY_WALL_S * self.scheduler.time_scale)
        self._schedule(delivery, ended_sim + delay, delay)
        return Outcome.RETRY

    def _record(self, delivery: _Delivery, due: tuple[float, float], ended_sim: float, sent: tuple[float | None, float | None],
                answer: Answer, latency_ms, round_trip_ms, outcome: Outcome) -> None:
        event = delivery.event
        stats = self._by_type.setdefault(str(event.type), _TypeStats())
        stats.attempts += 1
        stats.retried += delivery.attempts > 1
        stats.delivered += outcome is Outcome.DELIVERED
        stats.failed += outcome is Outcome.GAVE_UP
        stats.disabled += outcome is Outcome.DISABLED
        stats.statuses[answer.status if answer.status is not None else "no answer"] += 1
        attempt = Attempt(
            event_id=event.id,
            event_type=str(event.type),
            correlation_id=event.correlation_id,
            attempt=delivery.attempts,
            url=delivery.url,
            intended_at_sim=due[0],
            delay_s=due[1],
            ended_at_sim=ended_sim,
            sent_at_wall=sent[0],
            sent_at_sim=sent[1],
            status=answer.status,
            latency_ms=latency_ms,
            round_trip_ms=round_trip_ms,
            error=answer.error,
            fault=answer.fault or delivery.options.fault,
            final=outcome,
        )
        if self._sink is None:
            self.journal.append(attempt)
        else:
            self._sink(attempt)

    # -- reading the results ----------------------------------------------------------------

    def latency_percentiles(self) -> dict[str, dict[str, float | int | None]]:
        """p50/p90/p99/max in ms of answered attempts: ``corrected`` (from the intended send
        time, what SLAs use) beside ``uncorrected`` (from the actual send start)."""

        def summary(h: HdrHistogram) -> dict[str, float | int | None]:
            count = h.get_total_count()
            out: dict[str, float | int | None] = {"count": count}
            for p in PERCENTILES:
                out[f"p{p}"] = h.get_value_at_percentile(p) / 1000 if count else None
            out["max"] = h.get_max_value() / 1000 if count else None
            return out

        return {"corrected": summary(self.latency), "uncorrected": summary(self.latency_uncorrected)}

    def stats(self) -> dict[str, Any]:
        by_type = {
            name: {"attempts": s.attempts, "delivered": s.delivered, "failed": s.failed, "retried": s.retried,
                   "disabled": s.disabled, "statuses": {str(k): v for k, v in sorted(s.statuses.items(), key=str)}}
            for name, s in sorted(self._by_type.items())
        }
        total = {k: sum(t[k] for t in by_type.values()) for k in ("attempts", "delivered", "failed", "retried", "disabled")}
        return {**total, "pending": self.pending, "disabled_endpoints": sorted(self.disabled), "by_type": by_type}
