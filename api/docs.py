"""API documentation that works on a network without the internet.

FastAPI's own ``/docs`` and ``/redoc`` pages load Swagger UI and ReDoc from a CDN; on an offline
government network they stay blank. The same pages are served here with the scripts and styles
shipped inside the ``fastapi-offline`` wheel (Swagger UI's bundle and ReDoc's standalone
build), mounted under ``/docs/static``: nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_PREFIX = "/docs/static"
#: The one address ReDoc's standalone build loads from the internet (the "API docs by Redocly"
#: logo); our copy of the script points it at the favicon served beside it.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def assets_dir() -> Path:
    """Where the wheel keeps swagger-ui-bundle.js, swagger-ui.css and redoc.standalone.js."""
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from the package's own assets."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=assets_dir()), name="docs-static")
    title = app.title

    redoc_script = (
        (assets_dir() / "redoc.standalone.js")
        .read_bytes()
        .replace(REDOC_LOGO, f"{STATIC_PREFIX}/favicon.png".encode())
    )

    @app.get("/docs/redoc.standalone.js", include_in_schema=False)
    def redoc_js() -> Response:
        return Response(
            redoc_script,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} - API",
            swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            # no badge from the public validator service (it would be fetched from there)
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} - API",
            redoc_js_url="/docs/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            with_google_fonts=False,
        )
