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

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from standardwebhooks import Webhook

from reference_middleware.clients import Fakes
from reference_middleware.defects import Defect
from reference_middleware.intake import Intake, Refused
from reference_middleware.settings import Settings
from reference_middleware.store import Repository, open_database
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


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()
    webhook = Webhook(settings.webhook_secret)
    state: dict[str, Any] = {}

    def stored(event_type: str, outcome: str) -> None:
        metrics.deliveries.labels(event_type, outcome).inc()
        state["workers"].wake.set()

    state["intake"] = Intake(settings, lambda: state["repo"], stored, lambda reason: metrics.refused.labels(reason).inc())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        repo = Repository(await open_database(settings.database))
        # The retry defects reach the client too: no retry at all, or none that waits.
        fakes = Fakes(settings.fakes, settings.call_timeout_s, inline_retries=0 if Defect.NO_RETRY in settings.defects else 2,
                      honour_retry_after=Defect.IGNORES_RETRY_AFTER not in settings.defects)
        workers = Workers(settings, repo, Workflow(settings, repo, fakes))
        state.update(repo=repo, workers=workers)
        workers.start()
        channels = []  # each imported only when used: webhooks alone need no broker or SSH client
        if settings.broker is not None:
            from reference_middleware.broker import BrokerIntake

            channels.append(BrokerIntake(settings.broker, state["intake"], settings.defects))
        if settings.batch is not None:
            from reference_middleware.batch import BatchIntake

            channels.append(BatchIntake(settings.batch, state["intake"], settings.defects))
        try:
            for channel in channels:
                await channel.start()
            yield
        finally:
            for channel in channels:
                await channel.stop()
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
        result = await state["intake"].accept(body, request.headers.get("webhook-id"))
        if isinstance(result, Refused):
            return problem(result.status, result.title, result.detail, result.errors)
        return JSONResponse({"event_id": result.event_id, "outcome": result.outcome}, status_code=200)

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
