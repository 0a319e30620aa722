"""The HTTP load generators: tokens, keep-alive clients, command and baseline client
processes, open- and closed-loop request streams, projection lag while they run."""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import http.client
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.common import percentile

if TYPE_CHECKING:
    from bench.stores import Service, Store


def token(settings: Any, role: str, org: str, scope: str, sub: str) -> str:
    """A development bearer token signed with the data directory's key (``relief auth token``)."""
    from api.auth import mint_token

    return mint_token(
        settings,
        subject=sub,
        role=role,
        organisation=org,
        scope=scope,
        lifetime=dt.timedelta(hours=12),
    )


class Http:
    """One keep-alive HTTP/1.1 connection (http.client: the lightest client at hand, so the
    client takes as little of the two cores as possible from the server)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


REVIEW_BODY = json.dumps({"outcome": "continue", "notes": "bench: periodic check"}).encode()


def review_requests(
    settings: Any, targets: Sequence[Sequence[str]]
) -> list[tuple[str, dict[str, str]]]:
    """(path, headers) of a 1-event command per target case: a review by the county's staff."""
    tokens: dict[str, str] = {}
    requests = []
    for case_id, county in targets:
        if county not in tokens:
            tokens[county] = token(settings, "handling_staff", county, county, f"bench-{county}")
        requests.append(
            (
                f"/cases/{case_id}/reviews",
                {"Authorization": f"Bearer {tokens[county]}", "Content-Type": "application/json"},
            )
        )
    return requests


def command_client(
    port: int, requests: list[tuple[str, dict[str, str]]], start_at: float, end_at: float
) -> dict[str, Any]:
    """A client process: POST commands back to back from ``start_at`` to ``end_at``."""
    http_ = Http(port)
    ok = failed = 0
    statuses: dict[int, int] = {}
    while time.time() < start_at:
        time.sleep(0.001)
    cpu = time.process_time()
    n = 0
    while time.time() < end_at:
        path, headers = requests[n % len(requests)]
        n += 1
        status, _ = http_.request("POST", path, REVIEW_BODY, headers)
        if status == 200:
            ok += 1
        else:
            failed += 1
            statuses[status] = statuses.get(status, 0) + 1
    return {"ok": ok, "failed": failed, "statuses": statuses, "cpu": time.process_time() - cpu}


def raw_insert_client(
    url: str, topic: str, state: bytes, start_at: float, end_at: float
) -> dict[str, Any]:
    """A baseline process: what the store does per command, by hand: one transaction with
    the store's lock timeout, its table lock, its NOTIFY, one INSERT ... RETURNING, commit."""
    import psycopg

    ok = 0
    with psycopg.connect(url) as conn:
        while time.time() < start_at:
            time.sleep(0.001)
        cpu = time.process_time()
        server_cpu0 = _backend_cpu(conn.info.backend_pid)
        while time.time() < end_at:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '10s'")
                conn.execute("LOCK TABLE public.relief_events IN EXCLUSIVE MODE")
                conn.execute("NOTIFY relief_events")
                conn.execute(
                    "INSERT INTO public.relief_events"
                    " (originator_id, originator_version, topic, state)"
                    " VALUES (%s, 1, %s, %s) RETURNING notification_id",
                    (uuid.uuid4(), topic, state),
                ).fetchone()
            ok += 1
        server_cpu = _backend_cpu(conn.info.backend_pid) - server_cpu0
    return {
        "ok": ok,
        "failed": 0,
        "statuses": {},
        "cpu": time.process_time() - cpu,
        "server_cpu": server_cpu,
    }


def _backend_cpu(pid: int) -> float:
    """CPU seconds of one PostgreSQL backend (same machine)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    return 0.0


def run_clients(
    target: Callable[..., dict[str, Any]], argument_sets: list[tuple[Any, ...]], seconds: float
) -> tuple[float, list[dict[str, Any]], float]:
    """Run one process per argument set for ``seconds``; (ops/s, per-client results, wall s).

    Each set gets (start_at, end_at) appended: all start together after their imports."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(argument_sets), mp_context=context) as pool:
        # Warm the worker processes up (imports) before the clock starts.
        list(pool.map(time.sleep, [0.01] * len(argument_sets)))
        start_at = time.time() + 1.5
        end_at = start_at + seconds
        futures = [pool.submit(target, *a, start_at, end_at) for a in argument_sets]
        results = [f.result() for f in futures]
    total = sum(r["ok"] for r in results)
    return total / seconds, results, seconds


@dataclass
class Stream:
    """Requests sent at a fixed rate whatever the answers take (open loop)."""

    name: str
    rate: float  # requests per second
    make: Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]  # k -> request
    ok: tuple[int, ...] = (200,)


def schedule(rates: Sequence[float], seconds: float) -> Iterator[tuple[float, int, int]]:
    """When each request falls due, in order: (seconds from the start, stream, its number).
    Each stream keeps its own phase, so the streams' requests interleave evenly rather than
    all falling due at the same instant (as they did here before: a burst of one request per
    stream, each queued behind the others)."""
    phase = [i / (len(rates) * rate) for i, rate in enumerate(rates)]
    heap = [(phase[i], i, 0) for i in range(len(rates))]
    heapq.heapify(heap)
    while heap:
        at, i, k = heapq.heappop(heap)
        if at < seconds:
            yield at, i, k
            heapq.heappush(heap, (phase[i] + (k + 1) / rates[i], i, k + 1))


def open_loop(port: int, streams: Sequence[Stream], seconds: float, workers: int = 32) -> dict:
    """Send every stream at its rate for ``seconds`` from a pool of keep-alive connections.

    Latency is measured from the request's *scheduled* time to its answer, so a slow answer
    that delays the ones behind it counts against them too (no coordinated omission)."""
    import queue

    jobs: queue.Queue[Any] = queue.Queue()
    samples: dict[str, list[tuple[float, float, int]]] = {s.name: [] for s in streams}

    def work() -> None:
        client = Http(port)
        while True:
            job = jobs.get()
            if job is None:
                return
            stream, scheduled, (method, path, body, headers) = job
            began = time.perf_counter()
            try:
                status, _ = client.request(method, path, body, headers)
            except (OSError, http.client.HTTPException):
                status = 0
            done = time.perf_counter()
            samples[stream.name].append((done - scheduled, done - began, status))

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    t0 = time.perf_counter() + 0.2
    for offset, i, k in schedule([s.rate for s in streams], seconds):
        at = t0 + offset
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        stream = streams[i]
        jobs.put((stream, at, stream.make(k)))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join(120)
    report_: dict[str, Any] = {}
    for stream in streams:
        got = samples[stream.name]
        latency = [1000 * g[0] for g in got]
        service = [1000 * g[1] for g in got]
        statuses: dict[str, int] = {}
        for g in got:
            statuses[str(g[2])] = statuses.get(str(g[2]), 0) + 1
        report_[stream.name] = {
            "requests": len(got),
            "rate": round(len(got) / seconds, 1),
            "failed": sum(1 for g in got if g[2] not in stream.ok),
            "statuses": statuses,
            "p50_ms": round(percentile(latency, 50), 2),
            "p99_ms": round(percentile(latency, 99), 2),
            "max_ms": round(max(latency, default=math.nan), 2),
            "service_p99_ms": round(percentile(service, 99), 2),
        }
    return report_


def closed_loop(port: int, streams: Sequence[Stream], seconds: float, clients: int = 8) -> float:
    """Requests/s the server completes with ``clients`` connections asking back to back,
    round-robin over the streams' requests: its capacity for that mix."""
    done = [0] * clients
    end = time.perf_counter() + seconds

    def client(i: int) -> None:
        http_ = Http(port)
        k = i
        while time.perf_counter() < end:
            method, path, body, headers = streams[k % len(streams)].make(k)
            http_.request(method, path, body, headers)
            done[i] += 1
            k += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - started)


def dashboard_streams(settings: Any, rate: float) -> list[Stream]:
    """GET /caseload, /staffing, /alerts as a province supervisor, ``rate``/s in all."""
    headers = {"Authorization": f"Bearer {token(settings, 'supervisor', '44', '44', 'bench-sup')}"}
    return [
        Stream(name, rate / 3, lambda k, path=path: ("GET", path, None, headers))
        for name, path in (
            ("caseload", "/caseload"),
            ("staffing", "/staffing"),
            ("alerts", "/alerts"),
        )
    ]


def command_stream(
    settings: Any, targets: Sequence[Sequence[str]], rate: float, *, status_every: int = 0
) -> Stream:
    """Reviews of the target cases at ``rate``; with ``status_every`` N, every Nth command
    instead suspends or resumes (by turns) one of a tenth of the cases kept apart for it: a
    change the caseload and staffing dashboards show, where a review changes neither."""
    if not status_every:
        requests = review_requests(settings, targets)

        def review(k: int) -> tuple[str, str, bytes | None, dict[str, str]]:
            path, headers = requests[k % len(requests)]
            return "POST", path, REVIEW_BODY, headers

        return Stream("commands", rate, review)
    kept = max(len(targets) // 10, 1)
    reviews = review_requests(settings, targets[kept:] or targets)
    approvers: dict[str, str] = {}
    for _, county in targets[:kept]:
        if county not in approvers:
            approvers[county] = token(settings, "approver", county, county, f"bench-a-{county}")
    toggled = [
        (
            case_id,
            {"Authorization": f"Bearer {approvers[county]}", "Content-Type": "application/json"},
        )
        for case_id, county in targets[:kept]
    ]

    def make(k: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        if (k + 1) % status_every:
            path, headers = reviews[k % len(reviews)]
            return "POST", path, REVIEW_BODY, headers
        n = k // status_every
        case_id, headers = toggled[n % len(toggled)]
        action = "suspension" if (n // len(toggled)) % 2 == 0 else "resumption"
        return "POST", f"/cases/{case_id}/{action}", STATUS_BODY, headers

    return Stream("commands", rate, make)


STATUS_BODY = json.dumps({"reason": "bench: status change"}).encode()


def projection_lag(store: Store) -> int:
    from infra.projection_runner import projection_status
    from projections.registry import ALL_PROJECTIONS

    runtime = store.runtime
    statuses = projection_status(runtime.pool, ALL_PROJECTIONS, runtime.head_position())
    return max((s.lag for s in statuses), default=0)


def wait_projections(store: Store, runner: Service, timeout: float = 3600) -> float:
    """Wait until the runner process has every projection at the head; seconds waited."""
    started = time.perf_counter()
    while projection_lag(store) > 0:
        if runner.process.poll() is not None:
            raise RuntimeError(f"projection runner exited: {runner.log_path.read_text()[-2000:]}")
        if time.perf_counter() - started > timeout:
            raise TimeoutError("projections did not catch up")
        time.sleep(0.5)
    return time.perf_counter() - started


class LagSampler:
    """Samples the largest projection lag every second while a block runs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lags: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            with contextlib.suppress(Exception):
                self.lags.append(projection_lag(self.store))

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class ProjectionDelay:
    """How long an event takes, from when it is committed to when every projection has
    applied it: every ``every_s`` the log's head and each projection's position are read; a
    head first seen by one read is taken as committed halfway since the read before, and as
    applied by all at the first read where every position reaches it (resolution:
    ``every_s``). Heads still pending at the end count as pending until then."""

    def __init__(self, store: Store, every_s: float = 0.02) -> None:
        self.store = store
        self.every_s = every_s
        self.delays: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _query(self, conn: Any) -> str:
        from infra.schema import CONTROL_SCHEMA, generation_schema

        rows = conn.execute(
            f"SELECT name, active_generation FROM {CONTROL_SCHEMA}.projections"
        ).fetchall()
        positions = " UNION ALL ".join(
            f"SELECT position FROM {generation_schema(name, generation)}._tracking"
            for name, generation in rows
        )
        return (
            "SELECT (SELECT max(notification_id) FROM public.relief_events),"
            f" (SELECT min(position) FROM ({positions}) p)"
        )

    def _run(self) -> None:
        import psycopg

        pending: list[tuple[int, float]] = []  # (head, first seen)
        try:
            self._sample(psycopg, pending)
        except Exception:  # a sampler that died measures nothing: say why
            logging.getLogger(__name__).exception("projection delay sampling failed")
            raise

    def _sample(self, psycopg: Any, pending: list[tuple[int, float]]) -> None:
        with psycopg.connect(self.store.url, autocommit=True) as conn:
            query = self._query(conn)
            before = time.monotonic()
            while not self._stop.wait(self.every_s):
                now = time.monotonic()
                head, applied = conn.execute(query).fetchone()  # type: ignore[misc]
                if head is not None and (not pending or head > pending[-1][0]):
                    pending.append((head, (before + now) / 2))
                before = now
                while pending and applied is not None and applied >= pending[0][0]:
                    self.delays.append(now - pending.pop(0)[1])
            end = time.monotonic()
            self.delays.extend(end - seen for _, seen in pending)

    def __enter__(self) -> ProjectionDelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
