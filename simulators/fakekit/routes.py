"""The fakes' own routes: how they answer, and what they accept.

The route table is used for two checks FastAPI does not make well: unknown or repeated query parameters (a
misspelt filter such as ``?rmaid=`` would otherwise be ignored and silently widen the result),
and the ``Allow`` header of a 405 (Starlette's names the methods of one route only).
"""

from __future__ import annotations

import functools
import re
import weakref
from urllib.parse import parse_qsl

import pydantic_core
from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response

from simulators.fakekit.problems import invalid


def _query_names(dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


class RouteTable:
    def __init__(self, routers: list[APIRouter]) -> None:
        self._routes: list[tuple[re.Pattern[str], set[str], set[str]]] = [
            (route.path_regex, route.methods, _query_names(route.dependant))
            for router in routers
            for route in router.routes
        ]

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({m for regex, methods, _ in self._routes if regex.match(path) for m in methods})

    def check_query(self, method: str, path: str, query_string: bytes) -> None:
        """Raise a 422 problem naming the first unknown or repeated query parameter."""
        known = next((names for regex, methods, names in self._routes if method in methods and regex.match(path)), None)
        if known is None:
            return  # no such route: the router answers 404 or 405
        seen: set[str] = set()
        for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if name not in known:
                expected = f"expected one of {sorted(known)}" if known else "this operation takes no query parameters"
                raise invalid(f"query.{name}", f"unknown query parameter; {expected}")
            if name in seen:
                raise invalid(f"query.{name}", "given more than once; send it once")
            seen.add(name)


_FROZEN_JSON: dict[int, tuple[weakref.ref, bytes]] = {}


def document_json(document) -> bytes:
    """JSON of a document; a frozen one (seeded master data) is serialised once, then reused."""
    if isinstance(document, BaseModel) and document.model_config.get("frozen"):
        hit = _FROZEN_JSON.get(id(document))
        if hit is not None and hit[0]() is document:
            return hit[1]
        body = pydantic_core.to_json(document)
        key = id(document)
        _FROZEN_JSON[key] = (weakref.ref(document, lambda _, key=key: _FROZEN_JSON.pop(key, None)), body)
        return body
    return pydantic_core.to_json(document)


class DocumentRoute(APIRoute):
    """A route whose handler returns documents the store built through pydantic already.

    They are serialised straight to JSON: FastAPI would validate each one again against the
    response model first, a tenth of the cost of a GET. The response model still documents the
    operation in OpenAPI, and schemathesis checks every answer against it.
    """

    def __init__(self, path: str, endpoint, *, status_code: int | None = None, **options) -> None:
        code = status_code or 200

        @functools.wraps(endpoint)
        async def serialised(*args, **kwargs):
            result = await endpoint(*args, **kwargs)
            if isinstance(result, Response):
                return result
            return Response(document_json(result), status_code=code, media_type="application/json")

        super().__init__(path, serialised, status_code=status_code, **options)


def fake_router(**options) -> APIRouter:
    """The router for a fake's own API (see :class:`DocumentRoute`)."""
    return APIRouter(route_class=DocumentRoute, **options)
