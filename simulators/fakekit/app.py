"""Builds the FastAPI app of a fake: its routers behind the shared pipeline, problem+json errors,
and an OpenAPI description that tells the truth about auth and error responses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from simulators.clock import BusinessClock, Clock
from simulators.fakekit.admin import admin_router
from simulators.fakekit.auth import Credentials
from simulators.fakekit.docs import serve_offline_docs
from simulators.fakekit.pipeline import EXEMPT_PREFIXES, CallContext, FakePipeline
from simulators.fakekit.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldError,
    Problem,
    ProblemDetails,
)
from simulators.fakekit.routes import RouteTable
from simulators.fakekit.system import FakeSystem, Store
from simulators.seed import MasterData, master_data

# Statuses any operation behind the pipeline can answer, whatever its handler does.
_ERROR_STATUSES = {
    "400": "Malformed request or Idempotency-Key",
    "401": "Missing, unknown or expired credentials",
    "404": "No such resource",
    "409": "Conflict, e.g. the same Idempotency-Key still in flight",
    "422": "Invalid request: the problem names the field and what was expected",
    "429": "Rate or concurrency limit: wait Retry-After seconds",
    "500": "Injected fault",
    "503": "Outage or maintenance window: wait Retry-After seconds",
}


async def call_context(request: Request) -> CallContext:
    """Dependency: the caller, correlation id and idempotency key of this request.

    Handlers and dependencies of the fakes are all ``async def``: FastAPI would run plain
    ``def`` ones in a thread pool, and the stores (and later the SimPy world) must only ever
    be touched from the event loop's thread."""
    return request.state.call


def _field_path(loc: Iterable[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return Problem(400, "malformed-json", f"The body is not valid JSON: {err.get('msg')}.", title="Malformed JSON")
        errors.append(FieldError(field=_field_path(err.get("loc", ())), message=err.get("msg", "invalid")))
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return Problem(422, "invalid-request", detail, title="Request is invalid", errors=errors)


API_KEY_SECURITY = {"apiKey": {"type": "http", "scheme": "bearer"}}


def create_fake(
    name: str,
    store_factory: Callable[[MasterData, Clock], Store],
    credentials: Callable[[int], Credentials],
    *,
    seed: int,
    master: MasterData | None,
    clock: Clock | None,
    title: str,
    description: str,
    routers: list[APIRouter],
    security: dict = API_KEY_SECURITY,
    public_paths: frozenset[str] = frozenset(),
    **system_options,
) -> FastAPI:
    """The app of one fake system, on the master data of ``seed`` unless ``master`` is given."""
    master = master or master_data(seed)
    system = FakeSystem(
        name, master, store_factory, credentials(master.config.seed),
        clock=clock, public_paths=public_paths, **system_options,
    )
    return build_app(system, title=title, description=description, routers=routers, security=security)


def build_app(system: FakeSystem, *, title: str, description: str, routers: list[APIRouter], security: dict) -> FastAPI:
    app = FastAPI(title=title, description=description, version="1.0", docs_url=None, redoc_url=None)
    app.state.system = system
    serve_offline_docs(app, title)
    table = RouteTable(routers)
    for router in [*routers, admin_router()]:
        # Routes go straight onto the app: include_router() makes every request walk a
        # wrapper per route, which doubled the cost of a GET in this FastAPI release.
        app.router.routes.extend(router.routes)

    @app.get("/healthz", tags=["admin"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "system": system.name}

    @app.get("/clock", tags=["clock"], response_model=BusinessClock,
             summary="The business clock, for a layer that schedules work by it (nightly batches, cut-offs)")
    async def clock() -> BusinessClock:
        return BusinessClock(now=system.clock.now(), time_scale=system.clock.time_scale)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _validation_problem(exc).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = f"No route {request.method} {request.url.path}; see /docs." if exc.status_code in (404, 405) else str(exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {"Allow": ", ".join(table.allowed_methods(request.url.path))}
        return Problem(exc.status_code, slug, detail, headers=headers).response(request.url.path)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        # A 500 that is not an injected fault is a bug in the fake: say so plainly.
        return Problem(500, "internal-error", f"The {system.name} fake failed: {type(exc).__name__}: {exc}").response(request.url.path)

    app.add_middleware(FakePipeline, system=system, routes=table)
    app.openapi = lambda: _openapi(app, security)
    return app


def _openapi(app: FastAPI, security: dict) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["ProblemDetails"] = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    components["schemas"].update(
        {k: v for k, v in ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()}
    )
    components["schemas"]["ProblemDetails"].pop("$defs", None)
    for name in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(name, None)
    components["securitySchemes"] = security
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    system: FakeSystem = app.state.system
    for path, operations in schema.get("paths", {}).items():
        exempt = path.startswith(EXEMPT_PREFIXES)
        for op in operations.values():
            responses = op.setdefault("responses", {})
            statuses = ["400", "404", "422"] if exempt else list(_ERROR_STATUSES)
            for status in statuses:
                responses[status] = {"description": _ERROR_STATUSES[status], "content": problem}
            if not exempt and path not in system.public_paths:
                op["security"] = [{name: []} for name in security]
    app.openapi_schema = schema
    return schema
