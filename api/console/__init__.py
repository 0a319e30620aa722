"""The console (控制台): server-rendered pages under /console for supervisors, auditors and
bureau heads, in Simplified Chinese with an English switch. Every asset (htmx, styles) is
shipped in this package; nothing is loaded from the internet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from api.console.routes import router

    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(router)
