"""Bench datasets: a synthetic province seeded through the ledger's commands, built once per
(events, seed) under ``$RELIEF_BENCH_HOME`` (default ``/tmp/relief-bench``) and reused: seeding
1M events takes minutes, copying it seconds.

Two layers: the events (rebuilt when the generator changes) and, on a copy, the read models
caught up to ``window`` events before the head (rebuilt when the projections change).

    .venv/bin/python -m bench.datasets build [--events N] [--seed S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_EVENTS, DEFAULT_HOME, ROOT, exit_on_sigterm, log
from bench.load import token
from bench.postgres import start_postgres, stop_postgres

FIXTURE_VERSION = 4  # 4: events sealed to their place, checkpoints chained
EVENTS_PER_HOUSEHOLD = 28  # measured: `relief seed` writes ~28 events per household
CASE_EVENTS = 200
#: From this many events on (the issues' 100k and 1M), the dataset's province is the register's
#: whole (Guangdong: 124 counties, 1,757 townships, 26,842 villages), the households spread
#: over it: figures compared between sizes then differ by the volume of events alone, not by
#: a province of 13 counties against one of 124. Smaller datasets (tests, quick runs) shrink
#: the province so that every village holds a few households.
WHOLE_PROVINCE_EVENTS = 100_000


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
    return _fingerprint("tools/synthetic/*.py")


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
                    "bench.datasets",
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


# the last handle of this process: pg_ctl stop


def build_events(home: Path, events: int, seed: int) -> dict[str, Any]:
    """The events layer: the 200-event cases, then a province seeded through the ledger's
    commands, a checkpoint signed every 1,000 events as the checkpointer would."""
    started = time.perf_counter()
    target = events_dir(home, events, seed)
    building = target.with_name(target.name + f".building-{os.getpid()}")
    special, _ = dataset_plan(events)
    per_household = EVENTS_PER_HOUSEHOLD if events < 300_000 else 23.4  # big shapes: fewer
    households = max(10, round((events - special * (CASE_EVENTS + 5)) / per_household))
    tried: list[tuple[int, int]] = []  # (households, head) of each attempt
    for attempt in range(3):
        runtime, head, shape, case200 = _seed(
            building / "data", seed, households, special, events >= WHOLE_PROVINCE_EVENTS
        )
        tried.append((households, head))
        # Over by more than a tenth is refitted on the whole province only: below it the
        # register's own events alone can outnumber a tiny dataset's (the tests' 3,000).
        too_many = events >= WHOLE_PROVINCE_EVENTS and head > 1.1 * events
        if (head >= 0.97 * events and not too_many) or attempt == 2:
            break
        # The events a story writes depend on the province's shape, and the whole province
        # costs its counties', contracts' and coordinators' events before the first household:
        # fit head = fixed + per household (from the last two attempts, or the first and the
        # estimate above) and start again.
        if len(tried) >= 2 and tried[-1][0] != tried[-2][0]:
            (h0, e0), (h1, e1) = tried[-2:]
            per_household = max((e1 - e0) / (h1 - h0), 1.0)
        fixed = head - per_household * households
        fitted = max(10, round((events - fixed) / per_household))
        if fitted == households:  # as close as it gets
            break
        households = fitted
        log(f"{head:,} events for {events:,} asked: again with {households:,} households")
        runtime.close()
        stop_postgres(building / "data" / "pgdata")
    runtime.close()
    stop_postgres(building / "data" / "pgdata")
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
    url = start_postgres(data)
    with psycopg.connect(url, autocommit=True) as conn:
        reset_read_models(conn)
    settings = Settings(database_url=url, data_dir=data)
    runtime = Runtime.open(settings)
    _, window = dataset_plan(events)
    head = runtime.head_position()
    assert head == layer["events"], (head, layer)
    window_start = head - window
    case200 = layer["case200"]
    # The command targets: cases approved at the head. The caseload projection is run to the
    # head for them, then every read model back from nothing to the window's start: on the
    # whole province at 100k events most households' stories fall inside the window, so the
    # cases a projection caught up to the window's start sees approved are a handful.
    catch_up_projections(settings, up_to=head, names=["caseload"])
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT case_id::text, village FROM read_models.case_index"
            " WHERE status = 'approved' AND NOT case_id::text = ANY(%s)"
            " ORDER BY case_id LIMIT 2000",
            ([c[0] for c in case200],),
        ).fetchall()
    with psycopg.connect(url, autocommit=True) as conn:
        reset_read_models(conn)
    catch_up_projections(settings, up_to=window_start)
    log(f"projections caught up to {window_start:,}")
    targets = [[r[0], r[1][:6]] for r in rows]
    runtime.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    stop_postgres(data / "pgdata")
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


def _seed(
    data: Path, seed: int, households: int, special: int, whole: bool
) -> tuple[Any, int, Any, list]:
    """A fresh server in ``data``: the 200-event cases, then the seeded province (``whole``:
    every division of the register, ``WHOLE_PROVINCE_EVENTS``)."""
    from infra.checkpoints import load_or_create_key, sign_checkpoint
    from infra.runtime import Runtime
    from infra.sealing import seal_of
    from infra.settings import Settings
    from tools.synthetic.province import Geography, Shape, SimulatedClock, seed_province

    shutil.rmtree(data.parent, ignore_errors=True)
    url = start_postgres(data)
    settings = Settings(database_url=url, data_dir=data)
    runtime = Runtime.open(settings)
    shape = Shape.for_households(households, Geography.of(runtime.register.current()), whole=whole)
    key = load_or_create_key(settings.audit_key_file)
    token(settings, "auditor", "44", "44", "bench-setup")  # makes the dev token key
    # The 200-event cases: received, investigated, recommended, approved, then reviews.
    case200 = []
    for n in range(special):
        county = shape.counties[n % len(shape.counties)]
        village = shape.villages[shape.townships[county][0]][0]  # a village of the register
        case200.append([str(make_long_case(runtime, county, n, village)), county])
    seal = seal_of(runtime.ledger)
    sign_checkpoint(runtime.pool, key, seal)
    log(f"{special} cases of {CASE_EVENTS} events written")
    clock = SimulatedClock(runtime.services.clock.today())
    bulk = runtime.bulk(clock)
    ledger = bulk.store
    signed = {"at": 0}

    def progress(done: int, _events: int) -> None:
        if ledger.events_written - signed["at"] >= 1000:
            sign_checkpoint(runtime.pool, key, seal)  # as the checkpointer does, every 1,000
            signed["at"] = ledger.events_written
        if done % 5000 == 0:
            log(f"seeded {done:,}/{households:,} households, {ledger.events_written:,} events")

    seed_province(
        bulk, clock, households=households, seed=seed, progress=progress, whole_province=whole
    )
    ledger.close()
    sign_checkpoint(runtime.pool, key, seal)
    head = runtime.head_position()
    log(f"seeded {households:,} households: head {head:,}")
    return runtime, head, shape, case200


def make_long_case(runtime: Any, county: str, n: int, village: str) -> uuid.UUID:
    """A dibao case carried to approval through the ledger, then reviewed until it holds
    ``CASE_EVENTS`` events (each command its own transaction, as over HTTP)."""
    from decimal import Decimal

    from domain.case import HomeVisit, IncomeItem, MeansTest
    from domain.commands.cases import (
        ApproveCase,
        InvestigateCase,
        ReceiveApplication,
        RecommendCase,
        RegisterHousehold,
        ReviewCase,
    )
    from domain.household import HouseholdMember
    from domain.provenance import Actor, Provenance, Role
    from tools.synthetic.identities import resident_id
    from tools.synthetic.staff import as_staff

    clerk = Provenance(Actor("bench-clerk", Role.INTAKE_CLERK, county), reason="window")
    officer = as_staff(
        runtime.services, Provenance(Actor(f"bench-officer-{county}", Role.HANDLING_STAFF, county))
    )
    approver = as_staff(
        runtime.services, Provenance(Actor(f"bench-approver-{county}", Role.APPROVER, county))
    )
    # Born in 1930: outside the seeded birth years, so no seeded person shares the number.
    person = resident_id(county, dt.date(1930, 1, 1) + dt.timedelta(days=n), 900 + n)
    home = runtime.services.cases.register_household(
        RegisterHousehold(
            registered_division=village,
            residence_division=village,
            members=(HouseholdMember(person, "陈长案", "head"),),
            provenance=clerk,
        )
    )
    case = runtime.services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=person,
            programme="dibao",
            window_division=village[:9],
            provenance=clerk,
        )
    )
    visited = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    runtime.services.cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=MeansTest(
                (IncomeItem("wages", Decimal("300")),),
                (),
                1,
                HomeVisit(visited, village, officer.actor.id),
            ),
            contract_id=None,
            provenance=officer,
        )
    )
    runtime.services.cases.recommend_case(
        RecommendCase(
            case_id=case.id,
            recommendation="approve",
            reasons="below the line",
            monthly_amount=Decimal("700"),
            contract_id=None,
            provenance=officer,
        )
    )
    case = runtime.services.cases.approve_case(
        ApproveCase(
            case_id=case.id,
            monthly_amount=Decimal("700"),
            start_date=runtime.services.clock.today(),
            reasons="means test below the line",
            provenance=approver,
        )
    )
    k = 0
    while case.version < CASE_EVENTS:
        k += 1
        case = runtime.services.cases.review_case(
            ReviewCase(
                case_id=case.id, outcome="continue", notes=f"monthly check {k}", provenance=officer
            )
        )
    assert case.version == CASE_EVENTS, case.version
    return case.id


def _catch_up_process(settings: Any, name: str, up_to: int | None) -> None:
    from infra.runtime import Runtime
    from projections.registry import projection_class

    runtime = Runtime.open(settings, init=False, role=f"bench-{name}")
    try:
        runner = runtime.projection_runner(projection_class(name))
        while runner.run_once(up_to=up_to):
            pass
    finally:
        runtime.close()


def catch_up_projections(
    settings: Any, *, up_to: int | None = None, names: Sequence[str] | None = None
) -> None:
    """Run every projection's PostgreSQL feed up to a position, each in a process of its own
    (as ``relief projections rebuild`` does: threads of one process would share one
    interpreter lock), in batches of a rebuild's size."""
    import dataclasses
    import multiprocessing

    from infra.projection_processes import REBUILD_BATCH
    from projections.registry import ALL_PROJECTIONS

    settings = dataclasses.replace(settings, projection_batch=REBUILD_BATCH)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_catch_up_process, args=(settings, p.name, up_to))
        for p in ALL_PROJECTIONS
        if names is None or p.name in names
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"a projection's catch-up failed (exit codes {failed})")


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
