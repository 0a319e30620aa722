"""Answers refreshed ahead: after a batch changes what a dashboard answer reads, the API process
computes the new answer before its next reader asks.

A province-wide answer's tag moves with every batch that changes any of its rows (under the
bench's 50 commands/s, five times a second), and the first reader after each paid for
computing it: those readers made the tail of every province-wide dashboard. Here each process
remembers the conditional reads it was asked recently (``Recipe``: the request as it came,
less its validators) and listens for the projections' batches (the runner notifies
``READ_MODELS_CHANNEL`` with the generation's schema when a batch wrote rows). When one changes
a projection a recipe reads, the process asks itself that request again, through the whole
app as the original caller (access, scope, tag and all): the answer is computed and kept under
its new tag, or found kept already. A reader asking meanwhile waits for that computation
(``AnswerCache.flight``) rather than computing it too.

Bounded work: a recipe is replayed only if a client asked it since its last replay (a
dashboard nobody reads is not kept fresh), at most ``MAX_RECIPES`` are remembered, and one
not asked for ``KEEP_S`` is forgotten. A replay refused (an expired token: 401) forgets the
recipe. A refresh is invisible to clients: no request metrics, no access log, and counted
apart (``relief_answer_cache_refreshed_total``). Off with the answer cache
(``RELIEF_ANSWER_CACHE_MB=0``). Losing the listening connection only means the readers compute
their answers themselves until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from infra.schema import READ_MODELS_CHANNEL

log = logging.getLogger(__name__)

#: Recipes remembered per process, the least recently asked forgotten first.
MAX_RECIPES = 64
#: A recipe not asked for this long is forgotten.
KEEP_S = 60.0
#: Batches of several projections committing together are taken as one change.
SETTLE_S = 0.005
#: Back off this long after losing the listening connection.
RETRY_S = 1.0

#: Held by the one process of the API that refreshes, for as long as its connection lives.
REFRESHER_LOCK = "SELECT pg_try_advisory_lock(hashtext('relief-answer-refresher'))"
#: How often a process not refreshing tries to take over.
STANDBY_S = 5.0

LISTEN = sql.SQL("LISTEN {}").format(sql.Identifier(READ_MODELS_CHANNEL))

#: The ASGI scope key marking a replay (not a header: no client can send it).
REFRESH = "relief.refresh"

#: Headers a replay leaves out: it asks for the answer itself, not whether one is current.
_VALIDATORS = {b"if-none-match", b"cache-control", b"if-modified-since"}


@dataclass(frozen=True)
class Change:
    """What a projection's batch wrote, as its notification says: the tables, and the counties
    of its scoped tables (``ANY_COUNTY`` among them: any county)."""

    projection: str
    tables: frozenset[str]
    counties: frozenset[str]

    @classmethod
    def told(cls, payload: str) -> Change:
        schema, _, rest = payload.partition(" ")
        tables, _, counties = rest.partition(" ")
        return cls(
            projection_of(schema),
            frozenset(tables.split(",")) if tables else frozenset(),
            frozenset(counties.split(",")) if counties else frozenset({ANY_COUNTY}),
        )


#: A notification's county list meaning any county (infra/projection_runner.py ``MARKS``).
ANY_COUNTY = "*"


@dataclass
class Recipe:
    """A conditional read as a client asked it, and what its answer reads: projections, the
    tables it reads of some (the others: all), and the division its rows are of (None: the
    province, or rows not narrowed by division)."""

    scope: dict[str, Any]
    projections: frozenset[str]
    tables: Mapping[str, Sequence[str]]
    division: str | None
    asked_at: float
    asked_since_replay: bool = True

    def moved_by(self, change: Change) -> bool:
        """Whether a batch that wrote ``change`` may have moved this answer's tag (the same
        test as its marks: api/etags.py ``_content_mark``)."""
        if change.projection not in self.projections:
            return False
        read = self.tables.get(change.projection)
        if read is not None and not change.tables.intersection(read):
            return False
        if self.division is None or ANY_COUNTY in change.counties:
            return True
        if len(self.division) >= 6:
            return self.division[:6] in change.counties
        return any(county.startswith(self.division) for county in change.counties)


@dataclass
class Refresher:
    """The recipes of one API process, replayed on its event loop when a projection they read
    commits a batch that wrote rows."""

    app: Any
    recipes: OrderedDict[tuple[Any, ...], Recipe] = field(default_factory=OrderedDict)
    replays: int = 0

    def asked(
        self,
        scope: Mapping[str, Any],
        projections: Iterable[str],
        tables: Mapping[str, Sequence[str]] | None = None,
        division: str | None = None,
    ) -> None:
        """A client asked this conditional read (called by the tag's dependency)."""
        if scope.get(REFRESH) or scope.get("method") != "GET":
            return
        headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in _VALIDATORS]
        key = (scope["path"], scope.get("query_string", b""), tuple(headers))
        recipe = self.recipes.get(key)
        if recipe is None:
            kept = {k: scope[k] for k in _SCOPE_KEYS if k in scope}
            recipe = Recipe(
                {**kept, "headers": headers},
                frozenset(projections),
                dict(tables or {}),
                division,
                0.0,
            )
            self.recipes[key] = recipe
            while len(self.recipes) > MAX_RECIPES:
                self.recipes.popitem(last=False)
        self.recipes.move_to_end(key)
        recipe.asked_at = time.monotonic()
        recipe.asked_since_replay = True

    async def changed(self, changes: Iterable[Change]) -> None:
        """Batches that wrote ``changes`` committed: replay the recipes whose tags they may
        have moved that were asked since their last replay, one after another."""
        changes = set(changes)
        now = time.monotonic()
        for key, recipe in list(self.recipes.items()):
            if now - recipe.asked_at > KEEP_S:
                self.recipes.pop(key, None)
            elif recipe.asked_since_replay and any(recipe.moved_by(c) for c in changes):
                recipe.asked_since_replay = False
                if not await self.replay(recipe):
                    self.recipes.pop(key, None)

    async def replay(self, recipe: Recipe) -> bool:
        """The recipe asked again through the app; False when it was refused."""
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        scope = {**recipe.scope, REFRESH: True, "state": {}}
        try:
            await self.app(scope, receive, send)
        except Exception:  # a replay's failure is a reader's miss later, never the process's
            log.warning("refreshing %s failed", recipe.scope.get("path"), exc_info=True)
            return False
        self.replays += 1
        return status < 400

    async def listen(self, conninfo: str) -> None:
        """Replay on the projections' batches until cancelled; the listening connection made
        again after a loss."""
        while True:
            try:
                connecting = psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                async with await connecting as conn:
                    # One process refreshes; the others are sent its answers (shared).
                    taken = await (await conn.execute(REFRESHER_LOCK)).fetchone()
                    if not (taken and taken[0]):
                        await asyncio.sleep(STANDBY_S)
                        continue
                    await conn.execute(LISTEN)
                    await self._follow(conn)
            except psycopg.Error as error:
                log.warning("answers not refreshed ahead until reconnected: %s", error)
                await asyncio.sleep(RETRY_S)

    async def _follow(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            changed: set[Change] = set()
            async for notify in conn.notifies(stop_after=1):
                changed.add(Change.told(notify.payload))
            # the other projections' batches committing with it, taken with it (those
            # committed during the replays wait in the connection for the next round)
            async for notify in conn.notifies(timeout=SETTLE_S):
                changed.add(Change.told(notify.payload))
            await self.changed(changed)


#: What a replay keeps of the original request's scope (the rest is the connection's).
_SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "root_path",
    "query_string",
    "server",
    "client",
)


def projection_of(schema: str) -> str:
    """The projection a generation's schema belongs to (``rm_<name>_g<generation>``)."""
    return schema.removeprefix("rm_").rsplit("_g", 1)[0]
