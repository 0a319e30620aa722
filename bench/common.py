"""Shared helpers of the benchmarks: datasets, fresh stores, servers, clients, timing, results.

Every bench script measures one figure of issue 9 and, in the same run, a raw baseline (the
same work done by the simplest means PostgreSQL or Kafka offer); because these machines are
noisy, the ratio of the two is what we compare. Each script:

1. takes a fresh store: its own embedded PostgreSQL, in its own temporary RELIEF_DATA_DIR,
   whose data directory is a file copy of a cached dataset (``ensure_dataset``): a synthetic
   province seeded through the ledger's commands (``relief seed``'s code path) to about
   ``--events`` events, with twenty 200-event cases, a signed checkpoint every 1,000 events
   and the projections caught up to ``window`` events before the head;
2. measures, prints figure, baseline, ratio and target, and records the result in
   ``bench/results.json`` (and re-renders ``bench/results.md``) unless ``--profile`` is given.

The dataset is built once per (events, seed) under ``$RELIEF_BENCH_HOME`` (default
``/tmp/relief-bench``) and reused: seeding 1M events takes minutes, copying it seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = Path(os.environ.get("RELIEF_BENCH_HOME", "/tmp/relief-bench"))
DEFAULT_RESULTS = ROOT / "bench" / "results.json"
DEFAULT_EVENTS = 100_000
FIXTURE_VERSION = 4  # 4: events sealed to their place, checkpoints chained
EVENTS_PER_HOUSEHOLD = 28  # measured: `relief seed` writes ~28 events per household
CASE_EVENTS = 200
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Arguments --------------------------------------------------------------------------------------


def exit_on_sigterm() -> None:
    """SIGTERM ends the process through SystemExit, so servers it started are stopped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def parser(description: str | None) -> argparse.ArgumentParser:
    exit_on_sigterm()
    p = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    p.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        help="history size: events in the dataset (default 100,000; 1,000,000 for the big size)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic province")
    p.add_argument("--home", type=Path, default=DEFAULT_HOME, help="datasets and run directories")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results JSON to update")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="attach py-spy to the measured process and write its profile to DIR; "
        "profiled figures are printed, not recorded",
    )
    p.add_argument("--keep", action="store_true", help="keep the run directory afterwards")
    p.add_argument(
        "--dataset",
        type=Path,
        help="use this built dataset directory (run_all passes the one it built)",
    )
    return p


def size_label(events: int) -> str:
    if events >= 1_000_000 and events % 1_000_000 == 0:
        return f"{events // 1_000_000}M"
    if events >= 1000 and events % 1000 == 0:
        return f"{events // 1000}k"
    return str(events)


# Datasets ---------------------------------------------------------------------------------------


@dataclass
class DatasetMeta:
    requested: int
    seed: int
    events: int  # log head after the build
    households: int
    window: int  # the projections stop this many events before the head
    window_start: int  # ... at this position
    case200: list[list[str]]  # [case id, county] of the 200-event cases
    targets: list[list[str]]  # [case id, county] of approved seeded cases (command targets)
    counties: list[str]
    build_seconds: float
    version: int = FIXTURE_VERSION

    @classmethod
    def load(cls, path: Path) -> DatasetMeta:
        return cls(**json.loads(path.read_text()))


def dataset_plan(events: int) -> tuple[int, int]:
    """(number of 200-event cases, catch-up window) for a dataset of ``events`` events."""
    special = max(2, min(20, events // 5000))
    window = min(10_000, max(200, events // 10))
    return special, window


def _fingerprint(*patterns: str) -> str:
    import hashlib

    digest = hashlib.sha1(str(FIXTURE_VERSION).encode())
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def generator_fingerprint() -> str:
    """Of the code that writes a dataset's events: the synthetic province (and this file's
    FIXTURE_VERSION). The events layer is rebuilt when it changes."""
    return _fingerprint("infra/synthetic/*.py")


def projection_fingerprint() -> str:
    """Of the code that shapes the read models: the read-model layer is rebuilt from the
    events layer when it changes (a projection's tables follow its code)."""
    return _fingerprint("projections/**/*.py", "infra/schema.py", "infra/projection_runner.py")


def events_dir(home: Path, events: int, seed: int) -> Path:
    name = f"events-e{events}-s{seed}-v{FIXTURE_VERSION}-{generator_fingerprint()}"
    return home / "datasets" / name


def dataset_dir(home: Path, events: int, seed: int) -> Path:
    name = (
        f"e{events}-s{seed}-v{FIXTURE_VERSION}-{generator_fingerprint()}"
        f"-p{projection_fingerprint()}"
    )
    return home / "datasets" / name


def ensure_dataset(home: Path, events: int, seed: int) -> tuple[Path, DatasetMeta]:
    """The cached dataset, built first (in a subprocess, which stops its PostgreSQL) if missing.

    Two layers: the events (seeded once per generator version, the slow part at 1M) and, on a
    copy of them, the read models caught up to head - window (rebuilt when projections
    change)."""
    target = dataset_dir(home, events, seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".e{events}-s{seed}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "meta.json").exists():
            log(f"building dataset of ~{events:,} events (seed {seed}) in {target}")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.common",
                    "build",
                    "--events",
                    str(events),
                    "--seed",
                    str(seed),
                    "--home",
                    str(home),
                ],
                cwd=ROOT,
                check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
    return target, DatasetMeta.load(target / "meta.json")


def _stop_postgres(pgdata: Path) -> None:
    from pgserver import get_server

    get_server(pgdata).cleanup()  # the last handle of this process: pg_ctl stop


def build_events(home: Path, events: int, seed: int) -> dict[str, Any]:
    """The events layer: the 200-event cases, then a province seeded through the ledger's
    commands, a checkpoint signed every 1,000 events as the checkpointer would."""
    started = time.perf_counter()
    target = events_dir(home, events, seed)
    building = target.with_name(target.name + f".building-{os.getpid()}")
    special, _ = dataset_plan(events)
    per_household = EVENTS_PER_HOUSEHOLD if events < 300_000 else 23.4  # big shapes: fewer
    households = max(10, round((events - special * (CASE_EVENTS + 5)) / per_household))
    for attempt in range(3):
        runtime, head, shape, case200 = _seed(building / "data", seed, households, special)
        if head >= 0.97 * events or attempt == 2:
            break
        # The events a story writes depend on the province's shape: scale and start again.
        made = head - special * CASE_EVENTS
        households = round(households * (events - special * CASE_EVENTS) / made)
        log(f"{head:,} events is short of {events:,}: again with {households:,} households")
        runtime.close()
        _stop_postgres(building / "data" / "pgdata")
    runtime.close()
    _stop_postgres(building / "data" / "pgdata")
    layer = {
        "requested": events,
        "seed": seed,
        "events": head,
        "households": households,
        "case200": case200,
        "counties": shape.counties,
        "seed_seconds": round(time.perf_counter() - started, 1),
    }
    (building / "events.json").write_text(json.dumps(layer, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return layer


def reset_read_models(conn: Any) -> None:
    """Every projection's active generation emptied and recreated from its current code."""
    from infra.schema import CONTROL_SCHEMA, create_generation, generation_schema, point_views
    from projections.registry import ALL_PROJECTIONS

    for projection in ALL_PROJECTIONS:
        with conn.transaction():
            row = conn.execute(
                f"SELECT active_generation FROM {CONTROL_SCHEMA}.projections WHERE name = %s",
                (projection.name,),
            ).fetchone()
            if row is None:
                continue  # a projection newer than the events layer: init_schema makes it
            schema = generation_schema(projection.name, row[0])
            create_generation(conn, projection, schema, replace=True)
            point_views(conn, projection, schema)


def build_dataset(home: Path, events: int, seed: int) -> None:
    """The events layer (built if missing), copied, with the projections caught up to head -
    window by the current projection code."""
    import psycopg

    from infra.embedded_postgres import start_embedded_postgres
    from infra.runtime import Runtime
    from infra.settings import Settings

    started = time.perf_counter()
    source = events_dir(home, events, seed)
    if not (source / "events.json").exists():
        build_events(home, events, seed)
    layer = json.loads((source / "events.json").read_text())
    target = dataset_dir(home, events, seed)
    building = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(source / "data"), str(building / "data")], check=True)
    data = building / "data"
    (data / "pgdata" / ".handle_pids.json").write_text("[]")
    url = start_embedded_postgres(data)
    with psycopg.connect(url, autocommit=True) as conn:
        reset_read_models(conn)
    runtime = Runtime.open(Settings(database_url=url, data_dir=data))
    _, window = dataset_plan(events)
    head = runtime.head_position()
    assert head == layer["events"], (head, layer)
    window_start = head - window
    catch_up_projections(runtime, up_to=window_start)
    log(f"projections caught up to {window_start:,}")
    case200 = layer["case200"]
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT case_id::text, village FROM read_models.case_index"
            " WHERE status = 'approved' AND last_position < %s AND NOT case_id::text = ANY(%s)"
            " ORDER BY case_id LIMIT 2000",
            (window_start - 2000, [c[0] for c in case200]),
        ).fetchall()
    targets = [[r[0], r[1][:6]] for r in rows]
    runtime.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    _stop_postgres(data / "pgdata")
    meta = DatasetMeta(
        requested=events,
        seed=seed,
        events=head,
        households=layer["households"],
        window=window,
        window_start=window_start,
        case200=case200,
        targets=targets,
        counties=layer["counties"],
        build_seconds=round(layer["seed_seconds"] + time.perf_counter() - started, 1),
    )
    (building / "meta.json").write_text(json.dumps(asdict(meta), indent=1))
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    log(f"dataset ready: {head:,} events ({meta.build_seconds:.0f}s to build in all)")


def _seed(data: Path, seed: int, households: int, special: int) -> tuple[Any, int, Any, list]:
    """A fresh server in ``data``: the 200-event cases, then the seeded province."""
    from infra.bulk import BulkLedger
    from infra.checkpoints import load_or_create_key, sign_checkpoint
    from infra.embedded_postgres import start_embedded_postgres
    from infra.runtime import Runtime
    from infra.sealing import seal_of
    from infra.settings import Settings
    from infra.synthetic.province import Shape, SimulatedClock, seed_province

    shutil.rmtree(data.parent, ignore_errors=True)
    url = start_embedded_postgres(data)
    settings = Settings(database_url=url, data_dir=data)
    runtime = Runtime.open(settings)
    shape = Shape.for_households(households)
    key = load_or_create_key(settings.audit_key_file)
    seal = seal_of(runtime.ledger)
    token(settings, "auditor", "44", "44", "bench-setup")  # makes the dev token key
    # The 200-event cases: received, investigated, recommended, approved, then reviews.
    case200 = []
    for n in range(special):
        county = shape.counties[n % len(shape.counties)]
        case200.append([str(make_long_case(runtime.ledger, county, n)), county])
    sign_checkpoint(runtime.pool, key, seal)
    log(f"{special} cases of {CASE_EVENTS} events written")
    clock = SimulatedClock(runtime.ledger.today())
    ledger = BulkLedger(env=dict(runtime.ledger.env), clock=clock)
    signed = {"at": 0}

    def progress(done: int, _events: int) -> None:
        if ledger.events_written - signed["at"] >= 1000:
            sign_checkpoint(
                runtime.pool, key, seal
            )  # what the checkpointer does every 1,000 events
            signed["at"] = ledger.events_written
        if done % 5000 == 0:
            log(f"seeded {done:,}/{households:,} households, {ledger.events_written:,} events")

    seed_province(ledger, clock, households=households, seed=seed, progress=progress)
    ledger.close()
    sign_checkpoint(runtime.pool, key, seal)
    head = runtime.head_position()
    log(f"seeded {households:,} households: head {head:,}")
    return runtime, head, shape, case200


def make_long_case(ledger: Any, county: str, n: int) -> uuid.UUID:
    """A dibao case carried to approval through the ledger, then reviewed until it holds
    ``CASE_EVENTS`` events (each command its own transaction, as over HTTP)."""
    from domain.case import HomeVisit, MeansTest
    from domain.household import MemberInput
    from domain.provenance import Actor, Provenance, Role
    from infra.synthetic.identities import resident_id

    village = f"{county}001001"
    clerk = Provenance(Actor("bench-clerk", Role.INTAKE_CLERK, county), reason="window")
    officer = Provenance(Actor(f"bench-officer-{county}", Role.HANDLING_STAFF, county))
    approver = Provenance(Actor(f"bench-approver-{county}", Role.APPROVER, county))
    # Born in 1930: outside the seeded birth years, so no seeded person shares the number.
    person = resident_id(county, dt.date(1930, 1, 1) + dt.timedelta(days=n), 900 + n)
    home = ledger.register_household(
        registered_division=village,
        residence_division=village,
        members=[MemberInput(person, "陈长案", "head")],
        provenance=clerk,
    )
    case = ledger.receive_application(
        household_id=home.id,
        applicant_id=person,
        programme="dibao",
        window_division=village[:9],
        provenance=clerk,
    )
    visited = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ledger.investigate_case(
        case.id,
        means_test=MeansTest(
            [{"source": "wages", "monthly_amount": "300"}],
            [],
            1,
            HomeVisit(visited, village, officer.actor.id),
        ),
        contract_id=None,
        provenance=officer,
    )
    ledger.recommend_case(
        case.id,
        recommendation="approve",
        reasons="below the line",
        monthly_amount="700",
        contract_id=None,
        provenance=officer,
    )
    case = ledger.approve_case(
        case.id,
        monthly_amount="700",
        start_date=ledger.today(),
        reasons="means test below the line",
        provenance=approver,
    )
    k = 0
    while case.version < CASE_EVENTS:
        k += 1
        case = ledger.review_case(
            case.id, outcome="continue", notes=f"monthly check {k}", provenance=officer
        )
    assert case.version == CASE_EVENTS, case.version
    return case.id


def catch_up_projections(
    runtime: Any, *, up_to: int | None = None, names: Sequence[str] | None = None
) -> dict[str, float]:
    """Run every projection's PostgreSQL feed (one thread each) up to a position; seconds each."""
    from infra.projection_runner import PostgresFeedRunner
    from projections.registry import ALL_PROJECTIONS

    seconds: dict[str, float] = {}
    errors: list[BaseException] = []

    def run(projection: Any) -> None:
        runner = PostgresFeedRunner(
            runtime.pool,
            runtime.ledger.recorder,
            runtime.ledger.mapper,
            projection,
            batch_size=runtime.settings.projection_batch,
        )
        started = time.perf_counter()
        try:
            while runner.run_once(up_to=up_to):
                pass
        except BaseException as error:
            errors.append(error)
        seconds[projection.name] = time.perf_counter() - started

    threads = [
        threading.Thread(target=run, args=(p,))
        for p in ALL_PROJECTIONS
        if names is None or p.name in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return seconds


# A fresh store per bench ------------------------------------------------------------------------


class Store:
    """A private copy of a dataset on its own embedded PostgreSQL."""

    def __init__(self, run_dir: Path, meta: DatasetMeta) -> None:
        from infra.embedded_postgres import start_embedded_postgres
        from infra.settings import Settings

        self.run_dir = run_dir
        self.meta = meta
        self.data_dir = run_dir / "data"
        self.url = start_embedded_postgres(self.data_dir)
        self.settings = Settings(
            database_url=self.url,
            data_dir=self.data_dir,
            kafka_topic="relief.events",
        )
        self._runtime: Any = None
        self.services: list[Service] = []

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            from infra.runtime import Runtime

            self._runtime = Runtime.open(self.settings)
        return self._runtime

    def head(self) -> int:
        import psycopg

        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT max(notification_id) FROM public.relief_events").fetchone()
        return int(row[0] or 0) if row else 0

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELIEF_DATABASE_URL": self.url,
            "RELIEF_DATA_DIR": str(self.data_dir),
        }
        env.update(extra)
        return env

    def postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid_file.read_text().split()[0])
        return None

    def postgres_cpu(self) -> float:
        """CPU seconds used so far by the PostgreSQL server and its live backends."""
        import psutil

        pid = self.postmaster_pid()
        if pid is None:
            return 0.0
        total = 0.0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
        return total

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop()
        if self._runtime is not None:
            self._runtime.close()
        _stop_postgres(self.data_dir / "pgdata")


@contextlib.contextmanager
def fresh_store(args: argparse.Namespace, name: str) -> Iterator[Store]:
    if getattr(args, "dataset", None):
        source, meta = args.dataset, DatasetMeta.load(args.dataset / "meta.json")
    else:
        source, meta = ensure_dataset(args.home, args.events, args.seed)
    run_dir = args.home / "runs" / f"{name}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["cp", "-a", str(source / "data"), str(run_dir / "data")], check=True)
    pgdata = run_dir / "data" / "pgdata"
    (pgdata / ".handle_pids.json").write_text("[]")
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    store = Store(run_dir, meta)
    took = time.perf_counter() - started
    log(f"fresh store {run_dir} ({meta.events:,} events) ready in {took:.1f}s")
    try:
        yield store
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


# Processes of the system ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A ``relief`` subcommand run as its own process (as deployed), logging to a file."""

    def __init__(self, store: Store, name: str, argv: list[str], **env: str) -> None:
        self.name = name
        self.log_path = store.run_dir / f"{name}.log"
        self.port = int(env["RELIEF_HTTP_PORT"]) if "RELIEF_HTTP_PORT" in env else None
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "relief"), *argv],
                env=store.env(**env),
                cwd=store.run_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        store.services.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_http(self, timeout: float = 60.0) -> None:
        assert self.port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer on port {self.port}")

    def rss_mb(self) -> float:
        return proc_status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of this process's resident set (VmHWM)."""
        return proc_status_kb(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        import psutil

        with contextlib.suppress(psutil.Error):
            t = psutil.Process(self.pid).cpu_times()
            return float(t.user + t.system)
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_api(store: Store, name: str = "api") -> Service:
    api = Service(store, name, ["api"], RELIEF_HTTP_PORT=str(free_port()))
    api.wait_http()
    return api


def proc_status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


# HTTP ------------------------------------------------------------------------------------------


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


# Reads of one case -----------------------------------------------------------------------------

RAW_CASE_SELECT = (
    "SELECT originator_id, originator_version, topic, state FROM public.relief_events"
    " WHERE originator_id = %s ORDER BY originator_version"
)


def measure_case_reads(args: argparse.Namespace, mode: str) -> None:
    """p50 and p99 of reading a 200-event case over HTTP (``latest``: GET /cases/{id};
    ``as_of``: GET /cases/{id}/as-of?at=<a random instant of its history>), each request
    followed by the raw SELECT of the case's 200 rows on its own connection (interleaved, so
    both see the same noise). The ledger's own read in this process is timed too (details)."""
    import random
    from urllib.parse import quote
    from uuid import UUID

    import psycopg

    from infra.audit_chain import version_at

    with fresh_store(args, f"case_{mode}") as store:
        events = store.head()
        api = start_api(store)
        runtime = store.runtime
        cases = store.meta.case200
        tokens = {
            county: token(store.settings, "handling_staff", county, county, f"bench-{county}")
            for _, county in cases
        }
        spans = {}
        with runtime.pool.connection() as conn:
            for case_id, _ in cases:
                row = conn.execute(
                    "SELECT min(recorded_at), max(recorded_at), count(*) FROM audit.chain"
                    " WHERE originator_id = %s",
                    (case_id,),
                ).fetchone()
                assert row is not None and row[2] == CASE_EVENTS, row
                spans[case_id] = (row[0], row[1])
        rng = random.Random(args.seed)
        client = Http(api.port)
        raw = psycopg.connect(store.url, autocommit=True)
        ours: list[float] = []
        base: list[float] = []
        ledger_ms: list[float] = []
        versions: list[int] = []

        def one(measure: bool) -> None:
            case_id, county = rng.choice(cases)
            headers = {"Authorization": f"Bearer {tokens[county]}", "X-Purpose": "benchmark"}
            at = None
            if mode == "as_of":
                first, last = spans[case_id]
                at = first + (last - first) * rng.random()
                path = f"/cases/{case_id}/as-of?at={quote(at.isoformat())}"
            else:
                path = f"/cases/{case_id}"
            t0 = time.perf_counter()
            status, body = client.request("GET", path, headers=headers)
            t1 = time.perf_counter()
            assert status == 200, (status, body[:300])
            rows = raw.execute(RAW_CASE_SELECT, (UUID(case_id),)).fetchall()
            t2 = time.perf_counter()
            assert len(rows) == CASE_EVENTS
            if at is not None:
                version = version_at(runtime.pool, UUID(case_id), at)
                runtime.ledger.get_case(UUID(case_id), version=version)
            else:
                case = runtime.ledger.get_case(UUID(case_id))
                version = case.version
            t3 = time.perf_counter()
            if measure:
                ours.append(1000 * (t1 - t0))
                base.append(1000 * (t2 - t1))
                ledger_ms.append(1000 * (t3 - t2))
                versions.append(int(json.loads(body).get("version", version or 0)))

        for _ in range(min(30, args.requests)):
            one(False)
        log(f"{args.requests} reads ({mode})")
        with maybe_profile(args, api.pid, f"case_{mode}_api"):
            for _ in range(args.requests):
                one(True)
        raw.close()
        title = "case state at latest" if mode == "latest" else "case state as_of a random instant"
        limit = 3.0 if mode == "latest" else 4.0
        results = []
        for q in (50, 99):
            results.append(
                Result(
                    key=f"case_{mode}_p{q}",
                    figure=f"{title}, 200-event case, p{q}",
                    unit="ms",
                    ours=percentile(ours, q),
                    baseline=percentile(base, q),
                    baseline_what="raw SELECT of the case's 200 rows (psycopg, same socket)",
                    target=f"≤ {limit:g}×",
                    target_on="ratio",
                    target_op="<=",
                    target_value=limit,
                    details={
                        "requests": args.requests,
                        "ledger_in_process_ms": round(percentile(ledger_ms, q), 2),
                        "mean_version_returned": round(statistics.mean(versions), 1),
                    },
                    note="Ours is the HTTP GET as a client sees it (token check, recorded "
                    "read, load, JSON); details give the ledger's load alone.",
                )
            )
        report(args, f"bench/case_{mode}.py", results, events)


# Open-loop load ---------------------------------------------------------------------------------


@dataclass
class Stream:
    """Requests sent at a fixed rate whatever the answers take (open loop)."""

    name: str
    rate: float  # requests per second
    make: Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]  # k -> request
    ok: tuple[int, ...] = (200,)


def open_loop(port: int, streams: Sequence[Stream], seconds: float, workers: int = 32) -> dict:
    """Send every stream at its rate for ``seconds`` from a pool of keep-alive connections.

    Latency is measured from the request's *scheduled* time to its answer, so a slow answer
    that delays the ones behind it counts against them too (no coordinated omission)."""
    import heapq
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
    end = t0 + seconds
    heap = [(t0 + i / (len(streams) * s.rate), i, 0) for i, s in enumerate(streams)]
    heapq.heapify(heap)
    while heap:
        at, i, k = heapq.heappop(heap)
        if at >= end:
            continue
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        stream = streams[i]
        jobs.put((stream, at, stream.make(k)))
        heapq.heappush(heap, (t0 + (k + 1) / stream.rate, i, k + 1))
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


def command_stream(settings: Any, targets: Sequence[Sequence[str]], rate: float) -> Stream:
    requests = review_requests(settings, targets)
    return Stream(
        "commands",
        rate,
        lambda k: (
            "POST",
            requests[k % len(requests)][0],
            REVIEW_BODY,
            requests[k % len(requests)][1],
        ),
    )


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


# Statistics -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


# Results ----------------------------------------------------------------------------------------


@dataclass
class Result:
    key: str  # stable id of the figure (one script may give several: p50 and p99)
    figure: str
    unit: str  # "events/s", "commands/s", "ms", "s", "MB"
    ours: float
    target: str  # as the issue words it
    target_on: str  # "ratio" (ours / baseline) or "ours"
    target_op: str  # ">=" or "<="
    target_value: float
    events: int = 0
    size: str = ""
    baseline: float | None = None
    baseline_what: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    script: str = ""
    ratio: float | None = None
    met: bool | None = None
    measured_at: str = ""
    code: dict[str, Any] = field(default_factory=dict)

    def finish(self) -> Result:
        if self.baseline:
            self.ratio = self.ours / self.baseline
        value = self.ratio if self.target_on == "ratio" else self.ours
        if self.target_on == "extrapolated":
            value = self.details.get("extrapolated_to_1M")
        if value is not None:
            self.met = (
                value >= self.target_value if self.target_op == ">=" else value <= self.target_value
            )
        self.measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.code = code_state()
        return self


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.1f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:,.0f} {unit}"


def report(args: argparse.Namespace, script: str, results: list[Result], events: int) -> None:
    """Print each figure beside its baseline, ratio and target; record unless profiling."""
    for result in results:
        result.events = events
        result.size = size_label(args.events)
        result.script = script
        result.finish()
        ratio = f"{result.ratio:.3f}" if result.ratio is not None else "—"
        met = {True: "MET", False: "NOT MET", None: "n/a"}[result.met]
        print(
            f"{result.figure} [{result.size}, {events:,} events]:"
            f" ours {fmt(result.ours, result.unit)}"
            f" | baseline {fmt(result.baseline, result.unit)}"
            f"{' (' + result.baseline_what + ')' if result.baseline_what else ''}"
            f" | ratio {ratio} | target {result.target} | {met}"
            f"{' — ' + result.note if result.note else ''}",
            flush=True,
        )
        print("  " + json.dumps({"key": result.key, "details": result.details}), flush=True)
    if args.profile is not None:
        print("(profiled run: figures not recorded)", flush=True)
        return
    record(args.results, results)


def code_state() -> dict[str, Any]:
    """Which code was measured: the commit, and the working tree's changes outside bench/
    (others may be changing the code while benchmarks run)."""
    import hashlib

    def git(*argv: str) -> str:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            return subprocess.run(
                ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        return ""

    outside = ["--", ".", ":(exclude)bench", ":(exclude)tests/test_bench_scripts.py"]
    diff = git("diff", "HEAD", *outside)
    modified = [line[3:] for line in git("status", "--porcelain", *outside).splitlines()]
    tree = "".join(  # commits of bench results alone keep it
        line + "\n"
        for line in git("ls-tree", "-r", "HEAD").splitlines()
        if not line.split("\t", 1)[-1].startswith(("bench/", "tests/test_bench_scripts.py"))
    )
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "tree": hashlib.sha1(tree.encode()).hexdigest()[:10],
        "modified": modified,
        "diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:10] if diff else None,
    }


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import psutil

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def record(path: Path, results: list[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        document = load_results(path)
        fresh = {(r.key, r.size) for r in results}
        kept = [r for r in document["results"] if (r["key"], r["size"]) not in fresh]
        document["results"] = kept + [asdict(r) for r in results]
        document["machine"] = _machine()
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        path.with_suffix(".md").write_text(render_markdown(document))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on a directory (no lock file left behind)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record_dataset(path: Path, meta: DatasetMeta) -> None:
    """Note in the results which dataset a size stands for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        document = load_results(path)
        datasets = document.setdefault("datasets", {})
        datasets[size_label(meta.requested)] = {
            "events": meta.events,
            "households": meta.households,
            "seed": meta.seed,
            "cases_of_200_events": len(meta.case200),
            "catch_up_window": meta.window,
            "build_seconds": meta.build_seconds,
        }
        document["machine"] = _machine()
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        path.with_suffix(".md").write_text(render_markdown(document))


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        with contextlib.suppress(ValueError):
            document: dict[str, Any] = json.loads(path.read_text())
            document.setdefault("results", [])
            return document
    return {"results": []}


#: The order of the issue's table.
ORDER = (
    "http_commands",
    "bulk_import",
    "case_latest_p50",
    "case_latest_p99",
    "case_as_of_p50",
    "case_as_of_p99",
    "projection_catchup_postgres",
    "projection_catchup_kafka",
    "chain_verify",
    "read_latency_caseload",
    "read_latency_staffing",
    "read_latency_alerts",
    "rebuild_all",
    "peak_rss_api",
    "peak_rss_runner",
)


def _sort_key(record_: dict[str, Any]) -> tuple[int, str]:
    key = record_["key"]
    return (ORDER.index(key) if key in ORDER else len(ORDER), key)


def _size_events(label: str) -> float:
    multiplier = {"k": 1e3, "M": 1e6}.get(label[-1:], 1.0)
    with contextlib.suppress(ValueError):
        return float(label.rstrip("kM")) * multiplier
    return 0.0


def render_markdown(document: dict[str, Any]) -> str:
    records = document["results"]
    sizes = sorted({r["size"] for r in records}, key=_size_events)
    machine = document.get("machine", {})
    lines = [
        "# Benchmark results (issue 9)",
        "",
        "Written by `bench/run_all.py` (`make bench`); each row by its script in `bench/`.",
        f"Machine: {machine.get('cpus')} CPUs ({machine.get('cpu')}), "
        f"{machine.get('memory_gb')} GB, Python {machine.get('python')}. "
        "Noisy: compare ratios (ours / baseline, both measured in the same run).",
        "",
    ]
    for size in sizes:
        rows = sorted((r for r in records if r["size"] == size), key=_sort_key)
        events = max((r["events"] for r in rows), default=0)
        codes = sorted(
            {
                f"source tree {r.get('code', {}).get('tree', '?')}"
                + (f" + working-tree diff {d}" if (d := r.get("code", {}).get("diff_sha1")) else "")
                for r in rows
            }
        )
        commits = sorted({r.get("code", {}).get("commit", "?") for r in rows})
        when = sorted(r["measured_at"] for r in rows)
        lines += [
            f"## {size} events (log head {events:,})",
            "",
            f"Measured {when[0]} to {when[-1]} (UTC) on {'; '.join(codes)}"
            + (" (**mixed code: rows not comparable**)" if len(codes) > 1 else "")
            + f" (commits {', '.join(commits)}; the tree hash leaves out bench/).",
            "",
            "| figure | ours | baseline | ratio | target | met? |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            ratio = f"{r['ratio']:.3f}" if r.get("ratio") is not None else "—"
            met = {True: "yes", False: "**no**", None: "n/a"}[r.get("met")]
            if r["target_on"] == "extrapolated" and r.get("met") is not None:
                met += " (extrapolated to 1M)"
            lines.append(
                f"| {r['figure']} | {fmt(r['ours'], r['unit'])} | "
                f"{fmt(r.get('baseline'), r['unit'])} | {ratio} | {r['target']} | {met} |"
            )
        lines.append("")
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        lines += [
            f"## From {small} to {big} events",
            "",
            f"| figure | ours {small} | ours {big} | change | ratio {small} | ratio {big} |",
            "|---|---|---|---|---|---|",
        ]
        by = {(r["key"], r["size"]): r for r in records}
        for key in sorted({r["key"] for r in records}, key=lambda k: _sort_key({"key": k})):
            a, b = by.get((key, small)), by.get((key, big))
            if a is None or b is None:
                continue
            change = f"{b['ours'] / a['ours']:.2f}×" if a["ours"] else "—"
            ra = f"{a['ratio']:.3f}" if a.get("ratio") is not None else "—"
            rb = f"{b['ratio']:.3f}" if b.get("ratio") is not None else "—"
            lines.append(
                f"| {a['figure']} | {fmt(a['ours'], a['unit'])} | {fmt(b['ours'], b['unit'])} "
                f"| {change} | {ra} | {rb} |"
            )
        lines.append("")
    datasets = document.get("datasets", {})
    if datasets:
        lines += ["## Datasets", ""]
        for size in sorted(datasets, key=_size_events):
            d = datasets[size]
            lines.append(
                f"- {size}: {d['events']:,} events: a synthetic province of "
                f"{d['households']:,} households (seed {d['seed']}) written through the "
                f"ledger's commands (`relief seed`'s bulk path), {d['cases_of_200_events']} "
                f"cases of 200 events, a signed checkpoint per 1,000 events, projections "
                f"{d['catch_up_window']:,} events behind the head; built once in "
                f"{d['build_seconds']:,.0f} s and copied for each script."
            )
        lines.append("")
    lines += ["## What each baseline is", ""]
    scripts: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records, key=_sort_key):
        scripts.setdefault(r["script"], [])
        if all(x["key"] != r["key"] for x in scripts[r["script"]]):
            scripts[r["script"]].append(r)
    for script, rows in scripts.items():
        first = rows[0]
        figures = "; ".join(r["figure"] for r in rows)
        what = first.get("baseline_what") or "none (absolute target)"
        note = f" {first['note']}" if first.get("note") else ""
        lines.append(f"- `{script}` ({figures}): baseline: {what}.{note}")
    lines.append("")
    return "\n".join(lines)


# Profiling --------------------------------------------------------------------------------------


class PySpy:
    """``py-spy record`` attached to a process while a block runs (raw collapsed stacks)."""

    def __init__(self, pid: int, out: Path, *, rate: int = 100) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PySpy:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.out),
                "--nonblocking",
                "--gil",  # what holds the GIL: the CPU work of a Python process
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attach
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        summary = summarize_profile(self.out)
        self.out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
        print_profile(summary, str(self.out))


def _frame_name(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares of samples per function (file, not line) of a raw profile."""
    self_counts: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    if not path.exists():
        return {"samples": 0, "self": [], "inclusive": []}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            _frame_name(f)
            for f in stack.split(";")
            if f and not f.startswith(("thread", "process"))
        ]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + count

    def ranked(counts: dict[str, int]) -> list[list[Any]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [[name, round(100 * n / total, 1)] for name, n in best]

    return {"samples": total, "self": ranked(self_counts), "inclusive": ranked(inclusive)}


def print_profile(summary: dict[str, Any], label: str) -> None:
    print(f"profile {label}: {summary['samples']} samples", flush=True)
    print("  self %:", flush=True)
    for name, share in summary["self"][:15]:
        print(f"    {share:5.1f}  {name}", flush=True)
    print("  inclusive %:", flush=True)
    for name, share in summary["inclusive"][:25]:
        print(f"    {share:5.1f}  {name}", flush=True)


@contextlib.contextmanager
def maybe_profile(args: argparse.Namespace, pid: int, name: str) -> Iterator[None]:
    if args.profile is None:
        yield
        return
    with PySpy(pid, args.profile / f"{name}.txt"):
        yield


# The dataset builder's command line -------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description="build a bench dataset")
    p.add_argument("command", choices=["build"])
    p.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--home", type=Path, default=DEFAULT_HOME)
    args = p.parse_args()
    exit_on_sigterm()
    import logging

    logging.basicConfig(level=logging.WARNING)
    build_dataset(args.home, args.events, args.seed)


if __name__ == "__main__":
    main()
