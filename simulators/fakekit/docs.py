"""Each fake's API documentation at ``/docs``, served from the package: Swagger UI's files come
from the swagger-ui-bundle package, not a CDN, so the page works on a machine with no network."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC = "/docs/static"


def serve_offline_docs(app: FastAPI, title: str) -> None:
    """``/docs`` (Swagger UI) and its files under ``/docs/static``; the app must be built with
    ``docs_url=None`` so FastAPI's CDN page does not answer first."""
    app.mount(STATIC, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title}: API",
                                   swagger_js_url=f"{STATIC}/swagger-ui-bundle.js", swagger_css_url=f"{STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # the validator badge calls a remote host
