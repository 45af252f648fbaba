"""RFC 9457 problem details: every error a fake returns says what was wrong and what was expected."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. lines[0].quantity")
    message: str = Field(description="What was expected there")


class ProblemDetails(BaseModel):
    """Body of every error response (RFC 9457)."""

    type: str = Field(description="URI reference naming the kind of problem", examples=["urn:returns-harness:problem:not-found"])
    title: str
    status: int
    detail: str = Field(description="What went wrong, in words a person can act on")
    instance: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """Raised by stores and handlers; turned into an ``application/problem+json`` response."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or slug.replace("-", " ").capitalize()
        self.errors = errors
        self.headers = headers or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:returns-harness:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.model_dump() for e in self.errors]
        return body

    def response(self, instance: str | None = None) -> Response:
        return Response(
            orjson.dumps(self.body(instance)),
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=self.headers,
        )


def not_found(kind: str, id_: str) -> Problem:
    return Problem(404, "not-found", f"No {kind} with id {id_!r}.")


def invalid(field: str, message: str, status: int = 422) -> Problem:
    """A request that is well-formed but names something wrong (unknown item, too many units...)."""
    return Problem(
        status,
        "invalid-request",
        f"{field}: {message}",
        title="Request is invalid",
        errors=[FieldError(field=field, message=message)],
    )
