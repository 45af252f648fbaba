"""The HTTP face of the reference: webhook intake, the status of a return, health and metrics.

Intake does as little as it can before answering: check the signature, validate, store the
event and its job in one transaction, answer 2xx. The work happens later, in the workers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from standardwebhooks import Webhook

from reference_middleware.clients import Fakes
from reference_middleware.defects import Defect
from reference_middleware.events import (
    BadEvent,
    ReturnCancelledData,
    ReturnData,
    fact_key,
    parse,
)
from reference_middleware.settings import Settings
from reference_middleware.store import NewJob, Repository, open_database
from reference_middleware.workers import Workers
from reference_middleware.workflow import Workflow


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class Metrics:
    """Prometheus metrics of one reference instance (its own registry, so tests can run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter("reference_deliveries", "Webhook deliveries stored, by event type and outcome",
                                  ["type", "outcome"], registry=self.registry)
        self.refused = Counter("reference_refused_deliveries", "Webhook deliveries refused, by reason", ["reason"], registry=self.registry)
        self.gauges = {
            name: Gauge(f"reference_{name}", help_text, registry=self.registry)
            for name, help_text in {
                "jobs_pending": "Jobs waiting to run or to be retried (the outbox depth)",
                "jobs_waiting": "Jobs parked until an earlier fact of their return arrives",
                "jobs_done": "Jobs finished",
                "jobs_dead": "Jobs given up (refused, too many attempts, or dropped)",
                "inbox_lag_seconds": "Age of the oldest pending job",
                "dead_letters": "Deliveries refused as malformed",
                "retries": "Retries scheduled after failed calls",
            }.items()
        }


def signed_bytes(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks signature over raw bytes (``id.timestamp.body``), for a body the
    library cannot read as text; the timestamp's tolerance is the library's, checked first."""
    msg_id, timestamp, signatures = (headers.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s.partition(",")[2], expected) for s in signatures.split() if s.startswith("v1,"))


MAX_EVENT_BYTES = 1 << 20  # an event is a few KB: a megabyte is a mistake or an attack, refused before it is all read


async def _limited_body(request: Request) -> bytes | None:
    """The body, or None as soon as it is over MAX_EVENT_BYTES (declared or as it arrives)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_EVENT_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


ACK_LAG_S = 0.5  # how long the ack-before-store defect holds a delivery it already answered


async def _after(delay_s: float, work) -> None:
    await asyncio.sleep(delay_s)
    await work()


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()
    webhook = Webhook(settings.webhook_secret)
    state: dict[str, Any] = {}
    background: set[asyncio.Task] = set()  # the ack-before-store defect's pending writes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        repo = Repository(await open_database(settings.database))
        # The retry defects reach the client too: no retry at all, or none that waits.
        fakes = Fakes(settings.fakes, settings.call_timeout_s, inline_retries=0 if Defect.NO_RETRY in settings.defects else 2,
                      honour_retry_after=Defect.IGNORES_RETRY_AFTER not in settings.defects)
        workers = Workers(settings, repo, Workflow(settings, repo, fakes))
        state.update(repo=repo, workers=workers)
        workers.start()
        try:
            yield
        finally:
            await workers.stop()
            await fakes.aclose()
            await repo.close()

    app = FastAPI(title="returns-harness reference integration layer", lifespan=lifespan)
    app.state.settings = settings

    async def intake(request: Request) -> JSONResponse:
        body = await _limited_body(request)
        if body is None:
            metrics.refused.labels("too-large").inc()
            return problem(413, "Content Too Large", f"an event is at most {MAX_EVENT_BYTES:,} bytes; nothing was stored")
        if Defect.SLOW in settings.defects:
            await asyncio.sleep(settings.slow_ms / 1000)
        repo: Repository = state["repo"]
        if Defect.SKIPS_SIGNATURE_CHECK not in settings.defects:
            try:
                webhook.verify(body, dict(request.headers), json_parse=False)
            except UnicodeDecodeError:
                # The library verifies text only. Bytes that are not UTF-8 but carry a good signature
                # are a malformed event from the sender, not a forgery: 400, as any malformed one.
                if not signed_bytes(settings.webhook_secret, dict(request.headers), body):
                    metrics.refused.labels("signature").inc()
                    return problem(401, "Unauthorized", "webhook signature refused")
                metrics.refused.labels("malformed").inc()
                await state["repo"].dead_letter(request.headers.get("webhook-id"), "not UTF-8", body)
                return problem(400, "Bad Request", "the body is not UTF-8 JSON")
            except Exception as e:  # noqa: BLE001 (the library raises several kinds on bad headers)
                metrics.refused.labels("signature").inc()
                return problem(401, "Unauthorized", f"webhook signature refused: {e or type(e).__name__}")
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            metrics.refused.labels("malformed").inc()
            await repo.dead_letter(request.headers.get("webhook-id"), f"not JSON: {e}", body)
            return problem(400, "Bad Request", f"the body is not JSON: {e}")
        try:
            envelope, data = parse(event)
        except BadEvent as e:
            metrics.refused.labels("malformed").inc()
            await repo.dead_letter(request.headers.get("webhook-id"), str(e), body)
            return problem(422, "Unprocessable Content", "the event does not match the contract", e.errors)
        match data:
            case ReturnData():
                return_id = data.id
            case ReturnCancelledData():
                return_id = data.return_id
            case _:
                return_id = envelope.correlation_id
        job = NewJob(return_id, envelope.type, envelope.id, envelope.occurred_at.isoformat(), envelope.data)
        # double-restock: inspection deliveries skip deduplication (the defect's fast path).
        dedupe = Defect.NO_DEDUPE not in settings.defects and not (
            Defect.DOUBLE_RESTOCK in settings.defects and envelope.type == "inspection.completed")
        key = fact_key(envelope, data)

        async def store() -> str:
            outcome = await repo.accept(event, key, [job], dedupe=dedupe, delay_s=settings.react_delay_s)
            metrics.deliveries.labels(envelope.type, outcome).inc()
            state["workers"].wake.set()
            return outcome

        if Defect.ACK_BEFORE_STORE in settings.defects:
            task = asyncio.get_running_loop().create_task(_after(ACK_LAG_S, store))
            background.add(task)
            task.add_done_callback(background.discard)
            return JSONResponse({"event_id": envelope.id, "outcome": "acknowledged"}, status_code=200)
        return JSONResponse({"event_id": envelope.id, "outcome": await store()}, status_code=200)

    app.add_api_route("/webhooks", intake, methods=["POST"], summary="Receive any event of docs/CONTRACT.md")
    app.add_api_route("/webhooks/{source}", intake, methods=["POST"], summary="The same, for senders that want one URL per source")

    @app.get("/returns/{return_id}", summary="What this layer did for one return")
    async def return_status(return_id: str) -> JSONResponse:
        repo: Repository = state["repo"]
        steps, jobs = await repo.steps(return_id), await repo.jobs_of(return_id)
        if not steps and not jobs:
            return problem(404, "Not Found", f"no event of return {return_id} was received")
        status = steps.get("portal", {}).get("status", "requested")
        return JSONResponse({
            "return_id": return_id,
            "status": status,
            "finished": status in ("closed", "rejected") or bool(steps.get("cancelled")),
            "cancelled": bool(steps.get("cancelled")),
            "steps": steps,
            "jobs": jobs,
        })

    @app.get("/healthz", summary="Liveness, the defects switched on, and the clock this layer schedules by")
    async def healthz() -> dict:
        await state["repo"].gauges()  # the database answers
        return {"status": "ok", "defects": sorted(settings.defects), "clock": settings.clock}

    @app.get("/metrics", summary="Prometheus metrics: inbox lag, outbox depth, retries, dead letters")
    async def prometheus() -> PlainTextResponse:
        for name, value in (await state["repo"].gauges()).items():
            metrics.gauges[name].set(value)
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type="text/plain; version=0.0.4")

    return app
