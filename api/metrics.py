"""Prometheus metrics of one API process, through ``prometheus_client``.

Two sources, one registry per app (never the library's global default registry, so tests making
many apps do not collide and each app serves only its own series):

- ``RequestMetrics``, an ASGI middleware outside every other one, counts requests and observes
  their latency by method, route template (``/cases/{case_id}``, never the raw path: no IDs in
  labels) and status, and counts refused commands by their problem ``type`` and status;
- ``StateCollector``, read at scrape time: projection, relay, checkpoint and pool gauges from
  the database, one short query each, on a pooled connection bounded by the pool's timeouts.
  A database error leaves out what could not be read and sets ``relief_database_up`` to 0: the
  scrape still answers, never a 500.

Counters are per process: with several API workers (``RELIEF_WORKERS``) each answers with its
own, and Prometheus sees whichever process served the scrape (README, "Metrics").
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool
from starlette.routing import Match

from api.etags import REFRESH
from infra.database import discard_broken
from infra.faults import is_transient
from infra.projection_runner import projection_status
from infra.schema import CONTROL_SCHEMA
from projections.registry import ALL_PROJECTIONS

log = logging.getLogger(__name__)

COMMAND_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: Requests that matched no route share one label value: a scan of random paths must not
#: create a series per path.
UNMATCHED = "(unmatched)"
#: Problem types are ``/problems/<rule>`` from a fixed set of rules; anything else is "other",
#: again so that a label cannot grow without bound.
PROBLEM_TYPE = re.compile(r"^/problems/[a-z0-9._-]{1,80}$")
PROBLEM_BODY_LIMIT = 16_384  # problem bodies are a few hundred bytes; never buffer more
#: Seconds a scrape waits for a pooled connection before reporting the database down.
SCRAPE_WAIT_S = 2.0
#: The log head, as the recorder reads it (``max_notification_id``).
HEAD = "SELECT coalesce(max(notification_id), 0) AS head FROM public.relief_events"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The registry of one app and the request instruments in it."""

    def __init__(self, pool: ConnectionPool | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Which worker process answered the scrape, its CPU and memory (process_* series):
        # counters are per process, so a reader of several workers tells them apart by pid.
        ProcessCollector(registry=self.registry)
        Gauge(
            "relief_api_process",
            "the API worker process that answered this scrape",
            ["pid"],
            registry=self.registry,
        ).labels(pid=str(os.getpid())).set(1)
        self.requests = Counter(
            "relief_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "relief_http_request_duration_seconds",
            "time to answer an HTTP request, by method, route template and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refused = Counter(
            "relief_commands_refused",
            "commands answered with a problem (RFC 9457), by problem type and status",
            ["type", "status"],
            registry=self.registry,
        )
        if pool is not None:
            self.registry.register(StateCollector(pool))

    def watch_answer_cache(self, cache: Any) -> None:
        """Count the dashboard answers served from the process's cache (api/etags.py)."""
        self.registry.register(AnswerCacheCollector(cache))

    def watch_group_commit(self, groups: Any) -> None:
        """Count the groups the store's inserts were written in (infra/group_commit.py)."""
        self.registry.register(GroupCommitCollector(groups))


class GroupCommitCollector(Collector):
    def __init__(self, groups: Any) -> None:
        self.groups = groups

    def collect(self) -> Iterator[Metric]:
        groups = CounterMetricFamily(
            "relief_group_commit_groups", "transactions the process's inserts were written in"
        )
        groups.add_metric([], self.groups.groups)
        inserts = CounterMetricFamily(
            "relief_group_commit_inserts",
            "inserts written by them (over groups: the mean group size)",
        )
        inserts.add_metric([], self.groups.inserts)
        yield from (groups, inserts)


class AnswerCacheCollector(Collector):
    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        hits = CounterMetricFamily(
            "relief_answer_cache_hits", "dashboard answers sent from the process's cache"
        )
        hits.add_metric([], self.cache.hits)
        misses = CounterMetricFamily(
            "relief_answer_cache_misses", "dashboard answers computed: no kept answer for the tag"
        )
        misses.add_metric([], self.cache.misses)
        shared = CounterMetricFamily(
            "relief_answer_cache_shared_hits",
            "of the answers sent from the cache, those another API process computed",
        )
        shared.add_metric([], self.cache.shared_hits)
        coalesced = CounterMetricFamily(
            "relief_answer_cache_coalesced",
            "of the answers sent from the cache, those waited for while another request of the"
            " process computed them",
        )
        coalesced.add_metric([], self.cache.coalesced)
        stale = CounterMetricFamily(
            "relief_answer_cache_stale",
            "dashboard answers sent behind their tag (computed less than"
            " RELIEF_ANSWER_MAX_STALE_MS ago) while the current one was computed",
        )
        stale.add_metric([], self.cache.stale)
        refreshed = CounterMetricFamily(
            "relief_answer_cache_refreshed",
            "of the misses: answers computed in the background after a stale one was sent",
        )
        refreshed.add_metric([], self.cache.refreshed)
        size = GaugeMetricFamily("relief_answer_cache_bytes", "bytes of answers kept")
        size.add_metric([], self.cache.size)
        yield from (hits, misses, shared, coalesced, stale, refreshed, size)


def problem_type(body: bytes) -> str:
    """The bounded label for a problem body's ``type``."""
    try:
        kind = json.loads(body).get("type")
    except (ValueError, AttributeError):
        return "other"
    return kind if isinstance(kind, str) and PROBLEM_TYPE.match(kind) else "other"


def route_template(app: Any, scope: dict[str, Any]) -> str:
    """The path template of the route that answered (FastAPI puts it in the scope), else of the
    first route matching the path (requests refused before routing, e.g. by SafeWrites)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in getattr(app, "routes", ()):
        match, _ = candidate.matches({**scope, "type": "http"})
        if match is not Match.NONE:
            return str(getattr(candidate, "path", UNMATCHED)) or UNMATCHED
    return UNMATCHED


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request; added last, so it is outside the
    other middleware and also sees what they refuse before any route runs."""

    def __init__(self, app: Any, *, metrics: Metrics, routes_of: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.routes_of = routes_of  # the FastAPI app, whose routes name the templates

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get(REFRESH):  # a refresh is no client's request
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the app is answered 500 by Starlette
        is_problem = False
        body = bytearray()

        async def watch(message: Any) -> None:
            nonlocal status, is_problem
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        is_problem = value.startswith(b"application/problem+json")
            elif message["type"] == "http.response.body" and is_problem:
                room = PROBLEM_BODY_LIMIT - len(body)
                body.extend(message.get("body", b"")[: max(room, 0)])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.observe(scope, status, time.perf_counter() - started, is_problem, bytes(body))

    def observe(
        self, scope: Any, status: int, elapsed: float, is_problem: bool, body: bytes
    ) -> None:
        method = scope["method"]
        route = route_template(self.routes_of, scope)
        labels = (method, route, str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(elapsed)
        if method in COMMAND_METHODS and is_problem:
            self.metrics.refused.labels(problem_type(body), str(status)).inc()


class StateCollector(Collector):
    """Gauges read from the database and ``pool`` (the API's) at scrape time."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: collect() reads the database

    def collect(self) -> Iterator[Metric]:
        yield from self.pool_metrics()
        up = 1
        for read in (self.projection_metrics, self.relay_metrics, self.audit_metrics):
            try:
                yield from read()
            except Exception as error:  # the scrape answers with what it has, never a 500
                up = 0
                if is_transient(error):
                    discard_broken([self.pool])
                    log.warning("metrics: database unreachable (%s)", type(error).__name__)
                else:
                    log.exception("metrics: %s failed", read.__name__)
                break  # the next reads would wait for the same database again
        database = GaugeMetricFamily(
            "relief_database_up", "1 when the scrape could read the database, else 0"
        )
        database.add_metric([], up)
        yield database

    def pool_metrics(self) -> Iterator[Metric]:
        stats = self.pool.get_stats()
        for key, help_text in (
            ("pool_min", "connections the pool keeps at least"),
            ("pool_max", "connections the pool may open at most"),
            ("pool_size", "connections open now (in use, idle or being made)"),
            ("pool_available", "idle connections ready now"),
            ("requests_waiting", "requests waiting now for a connection"),
        ):
            gauge = GaugeMetricFamily(f"relief_db_{key}", f"API connection pool: {help_text}")
            gauge.add_metric([], stats.get(key, 0))
            yield gauge
        for key, help_text in (
            ("requests_num", "connections handed out"),
            ("requests_errors", "requests for a connection that failed (timeout, pool closed)"),
            ("connections_lost", "connections found broken and replaced"),
        ):
            counter = CounterMetricFamily(f"relief_db_{key}", f"API connection pool: {help_text}")
            counter.add_metric([], stats.get(key, 0))
            yield counter

    def projection_metrics(self) -> Iterator[Metric]:
        with self.pool.connection(timeout=SCRAPE_WAIT_S) as conn:
            row = conn.execute(HEAD).fetchone()
        head = int(row[0]) if row else 0
        statuses = projection_status(self.pool, ALL_PROJECTIONS, head)
        log_head = GaugeMetricFamily("relief_log_head", "last global position in the event log")
        log_head.add_metric([], head)
        yield log_head
        for metric, help_text, value in (
            ("relief_projection_position", "last global position applied", "position"),
            ("relief_projection_head", "last global position in the log", "head"),
            ("relief_projection_lag_events", "events not yet applied", "lag"),
            ("relief_projection_generation", "build generation serving reads", "generation"),
            ("relief_projection_halted", "1 when stopped on a bad event", "halted"),
        ):
            gauge = GaugeMetricFamily(metric, help_text, labels=["projection"])
            for s in statuses:
                number = int(s.last_error is not None) if value == "halted" else getattr(s, value)
                gauge.add_metric([s.name], number)
            yield gauge

    def relay_metrics(self) -> Iterator[Metric]:
        """The relay's stored position (infra/relay.py keeps it in relay_state, updated after
        the broker acknowledged the batch) against the log head, per relay."""
        with self.pool.connection(timeout=SCRAPE_WAIT_S) as conn:
            rows = conn.execute(
                f"SELECT r.name, r.position, r.epoch, h.head,"
                f" extract(epoch FROM now() - r.updated_at)"
                f" FROM {CONTROL_SCHEMA}.relay_state r,"
                f" ({HEAD}) h ORDER BY r.name"
            ).fetchall()
        position = GaugeMetricFamily(
            "relief_relay_position", "last global position published to Kafka", labels=["relay"]
        )
        lag = GaugeMetricFamily(
            "relief_relay_lag_events", "events in the log not yet published", labels=["relay"]
        )
        epoch = GaugeMetricFamily(
            "relief_relay_epoch", "republications after the broker lost data", labels=["relay"]
        )
        idle = GaugeMetricFamily(
            "relief_relay_last_update_age_seconds",
            "seconds since the relay last stored its position",
            labels=["relay"],
        )
        for name, pos, ep, head, age in rows:
            position.add_metric([name], pos)
            lag.add_metric([name], max(int(head) - int(pos), 0))
            epoch.add_metric([name], ep)
            if age is not None:
                idle.add_metric([name], float(age))
        yield from (position, lag, epoch, idle)

    def audit_metrics(self) -> Iterator[Metric]:
        """The newest checkpoint's age and the unsigned tail: chained events after the position
        it signed, as the checkpointer (infra/checkpoints.py, ``Checkpointer.due``) counts them."""
        with self.pool.connection(timeout=SCRAPE_WAIT_S) as conn:
            row = conn.execute(
                "SELECT (SELECT max(position) FROM audit.chain),"
                " c.position, extract(epoch FROM now() - c.signed_at), c.sequence"
                " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT position, signed_at, sequence"
                " FROM audit.checkpoints ORDER BY sequence DESC LIMIT 1) c ON true"
            ).fetchone()
        assert row is not None
        head, signed = int(row[0] or 0), int(row[1] or 0)
        unsigned = GaugeMetricFamily(
            "relief_audit_unsigned_events",
            "chained events after the newest signed checkpoint",
        )
        unsigned.add_metric([], max(head - signed, 0))
        signed_up_to = GaugeMetricFamily(
            "relief_audit_signed_position", "last global position a checkpoint signed"
        )
        signed_up_to.add_metric([], signed)
        checkpoints = GaugeMetricFamily(
            "relief_audit_checkpoint_sequence", "sequence number of the newest checkpoint"
        )
        checkpoints.add_metric([], int(row[3] or 0))
        yield from (unsigned, signed_up_to, checkpoints)
        if row[2] is not None:  # no checkpoint yet: no age rather than a made-up one
            age = GaugeMetricFamily(
                "relief_audit_checkpoint_age_seconds", "seconds since the newest checkpoint"
            )
            age.add_metric([], float(row[2]))
            yield age
