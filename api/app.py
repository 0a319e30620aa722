"""The FastAPI application: one router per area, one error format, one runtime."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import Depends, FastAPI, Request

from api import console, docs, etags, openapi_docs, problems
from api.auth import TokenVerifier
from api.deps import refuse_unknown_query
from api.metrics import Metrics, RequestMetrics
from api.names import bind_register
from api.routes import (
    audit,
    cases,
    operations,
    purchasing,
    staffing,
    standards,
    supervision,
)
from api.safe_writes import COMMAND_METHODS, IdempotencyStore, SafeWrites
from infra.database import LoopReads
from infra.ledger import ByVersion, request_loads
from infra.runtime import Runtime, sessions_for

#: In the order requests are matched against them: the case reads (cases, then audit's as-of
#: and reads) come first, being the most asked.
ROUTERS = (
    cases.router,
    audit.router,
    purchasing.router,
    staffing.router,
    standards.router,
    operations.router,
    supervision.router,
)


def app_from_env() -> FastAPI:
    """The app of one API worker process (``relief api --workers N``): its own runtime, pools
    and aggregate cache, over the database the parent names in ``RELIEF_DATABASE_URL``."""
    from infra.settings import Settings

    runtime = Runtime.open(Settings.from_env(), init=False, role="api")
    app = serving_app(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with closing_loop_reads(app):
            yield
        runtime.close()

    app.router.lifespan_context = lifespan
    return app


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="relief-ledger",
        version="0.1.0",
        description="Event-sourced case management for social assistance and purchased services.",
        dependencies=[Depends(every_request)],
        docs_url=None,  # served from the package's own assets (api/docs.py), not a CDN
        redoc_url=None,
    )
    verifier = TokenVerifier(runtime.settings)
    app.state.runtime = runtime
    app.state.token_verifier = verifier
    # Case summaries by (id, version) (api/routes/cases.py), as many as cached aggregates.
    size = runtime.settings.aggregate_cache
    app.state.case_summaries = ByVersion(size) if size > 0 else None
    # Case reads sent from the event loop (api/routes/cases.py, audit.py): closed at shutdown.
    app.state.loop_reads = LoopReads(
        runtime.database_url,
        size=runtime.settings.db_pool_size,
        sessions=sessions_for(runtime.settings, runtime.role),
    )
    app.router.lifespan_context = closing_loop_reads
    problems.install(app)
    etags.install(
        app,
        cache_bytes=runtime.settings.answer_cache_mb * 1024 * 1024,
        # Several processes: each answer computed by one of them serves the others too.
        shared=app.state.loop_reads if runtime.settings.workers > 1 else None,
        seal=getattr(getattr(runtime.ledger.mapper, "cipher", None), "seal", None),
        max_stale_s=runtime.settings.answer_max_stale_ms / 1000,
    )
    # The API's routes first: a request is matched against the routes in order, and the
    # console's (a router of its own, scanned whole) and the docs' are the rarely asked.
    etags.document_not_modified(r for router in ROUTERS for r in router.routes)
    for router in ROUTERS:
        app.include_router(router, responses=problems.documented_errors())
    docs.install(app)
    console.install(app)
    app.add_middleware(OneLoadPerRequest)
    app.add_middleware(
        SafeWrites,
        max_body_bytes=runtime.settings.max_body_bytes,
        verifier=verifier,
        store=IdempotencyStore(
            runtime.pool,
            getattr(runtime.ledger.mapper, "cipher", None),
            runtime.were_recorded,
        ),
    )
    # outside the others: it also counts what SafeWrites refuses before any route runs
    app.state.metrics = Metrics(runtime.pool)
    if app.state.answer_cache is not None:
        app.state.metrics.watch_answer_cache(app.state.answer_cache)
    groups = getattr(runtime.ledger.recorder, "groups", None)
    if groups is not None:
        app.state.metrics.watch_group_commit(groups)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics, routes_of=app)
    app.add_middleware(CollectAfterAnswer)  # last added, so outermost: after the answer
    document_idempotency_key(app)
    return app


def serving_app(runtime: Runtime) -> FastAPI:
    """The app of a process that serves it (not the tests'), its heap settled after."""
    app = create_app(runtime)
    settle_heap(runtime)
    return app


def settle_heap(runtime: Runtime) -> None:
    """A serving process's long-lived objects (modules, the app, the division register's
    ~29,000 entries) taken out of the garbage collector's sight (``gc.freeze``): each full
    collection walked them all, 0.1-0.3 s on this machine, a pause every request then in
    flight waited out. Young collections every 10,000 allocations, not 700: a request's
    objects are mostly freed by reference counting before any collection sees them; and they
    run after a request's answer is sent (``CollectAfterAnswer``), the collector's own
    trigger kept only as a backstop ten times further, for work that allocates between
    answers."""
    with contextlib.suppress(psycopg.Error):
        len(runtime.register)  # loaded now, not by the first request (later reloads are not)
    gc.collect()
    gc.freeze()
    gc.set_threshold(10 * YOUNG_EVERY, 10, 10)


#: Allocations (net) between the young collections a serving process runs after answers.
YOUNG_EVERY = 10_000


def collect_due(young_every: int = YOUNG_EVERY) -> int | None:
    """The collection the collector would run by now with ``young_every`` as its first
    threshold, run now (the generation collected; None when none is due): the young one,
    or an older one as often as its thresholds say."""
    counts = gc.get_count()
    if counts[0] <= young_every:
        return None
    _, every_young, every_middle = gc.get_threshold()
    generation = 0
    if counts[1] >= every_young:
        generation = 2 if counts[2] >= every_middle else 1
    gc.collect(generation)
    return generation


class CollectAfterAnswer:
    """ASGI middleware: the collections due run once the answer is sent (``collect_due``),
    between requests, rather than inside whichever request's allocation crossed the
    threshold (one request in sixty waited out 1-7 ms of a young collection under load)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                collect_due()


async def every_request(request: Request) -> None:
    """The app-wide dependency: unknown query parameters refused, the division register
    bound for the answer's names (one dependency: FastAPI resolves each on every request)."""
    await refuse_unknown_query(request)
    await bind_register(request)


@asynccontextmanager
async def closing_loop_reads(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan: its loop's connections (``LoopReads``) closed at shutdown."""
    try:
        yield
    finally:
        await app.state.loop_reads.close()


class OneLoadPerRequest:
    """ASGI middleware: each aggregate is loaded once per request (infra/ledger.py
    ``request_loads``): the access check's load is the one the command changes or the read
    answers from. Set here, on the event loop, so every worker thread of the request shares it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_loads(writes=scope["method"] in COMMAND_METHODS):
            await self.app(scope, receive, send)


def document_idempotency_key(app: FastAPI) -> None:
    """Every command accepts an Idempotency-Key (handled by SafeWrites, before the route)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            openapi_docs.document([r for router in ROUTERS for r in router.routes], schema)
            for operations in schema.get("paths", {}).values():
                command = operations.get("post")
                if command is not None:
                    command.setdefault("parameters", []).append(
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "a new random key per command (e.g. a UUID); a "
                            "retry with the same key gets the first answer and records nothing",
                            "schema": {"type": "string", "minLength": 8, "maxLength": 200},
                        }
                    )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
