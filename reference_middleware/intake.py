"""Intake of one event, whatever carried it (a webhook, a broker message): parse it against the
contract, then store it and its job in one transaction. The carrier decides how to answer:
a webhook with a status code, a broker message with an ack or a dead-letter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from reference_middleware.defects import Defect
from reference_middleware.events import BadEvent, ReturnCancelledData, ReturnData, fact_key, parse
from reference_middleware.settings import Settings
from reference_middleware.store import NewJob, Repository

ACK_LAG_S = 0.5  # how long the ack-before-store defect holds an event it already acknowledged


@dataclass(frozen=True)
class Refused:
    """An event that breaks the contract: it is dead-lettered, and nothing is written for it."""

    status: int  # what a webhook answers: 400 not JSON, 422 not the contract
    title: str
    detail: str
    errors: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class Accepted:
    event_id: str
    outcome: str  # "stored", "duplicate" ... or "acknowledged" (stored later: ack-before-store)


@dataclass
class Intake:
    settings: Settings
    repo: Callable[[], Repository]  # the open repository (opened with the app)
    stored: Callable[[str, str], None]  # (event type, outcome): metrics, and waking the workers
    refused: Callable[[str], None]  # reason: metrics
    _background: set[asyncio.Task] = field(default_factory=set)  # the ack-before-store defect's pending writes

    async def accept(self, body: bytes, event_id: str | None) -> Accepted | Refused:
        """Parse and store one event; ``event_id`` is the carrier's id (webhook-id, message_id),
        kept with a refused body in the dead letters."""
        repo = self.repo()
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            self.refused("malformed")
            await repo.dead_letter(event_id, f"not JSON: {e}", body)
            return Refused(400, "Bad Request", f"the body is not JSON: {e}")
        try:
            envelope, data = parse(event)
        except BadEvent as e:
            self.refused("malformed")
            await repo.dead_letter(event_id, str(e), body)
            return Refused(422, "Unprocessable Content", "the event does not match the contract", e.errors)
        match data:
            case ReturnData():
                return_id = data.id
            case ReturnCancelledData():
                return_id = data.return_id
            case _:
                return_id = envelope.correlation_id
        job = NewJob(return_id, envelope.type, envelope.id, envelope.occurred_at.isoformat(), envelope.data)
        defects = self.settings.defects
        # double-restock: inspection deliveries skip deduplication (the defect's fast path).
        dedupe = Defect.NO_DEDUPE not in defects and not (
            Defect.DOUBLE_RESTOCK in defects and envelope.type == "inspection.completed")
        key = fact_key(envelope, data)

        async def store() -> str:
            outcome = await repo.accept(event, key, [job], dedupe=dedupe, delay_s=self.settings.react_delay_s)
            self.stored(envelope.type, outcome)
            return outcome

        if Defect.ACK_BEFORE_STORE in defects:
            task = asyncio.get_running_loop().create_task(_after(ACK_LAG_S, store))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return Accepted(envelope.id, "acknowledged")
        return Accepted(envelope.id, await store())


async def _after(delay_s: float, work: Callable[[], Awaitable[object]]) -> None:
    await asyncio.sleep(delay_s)
    await work()
