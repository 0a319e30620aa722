"""The ``relief`` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api import logs
from api.progress import ProgressBar
from domain.provenance import Role
from infra.settings import Settings, SettingsError

if TYPE_CHECKING:
    from infra.audit_verify import Verification
    from infra.runtime import Runtime

log = logging.getLogger("relief")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")
TOKEN_ROLES = [r for r in Role if r is not Role.SYSTEM]


def _dev_tools() -> None:
    """The synthetic-data generators live in tools/ beside the source, not in the installed
    package: found in a source checkout (an editable install), refused by name elsewhere."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "tools" / "synthetic").is_dir():
        raise SettingsError(
            "relief seed and relief scenario use the development tools (tools/) of a source "
            "checkout; this installation has none"
        )
    if str(root) not in sys.path:
        sys.path.append(str(root))


def _runtime(args: argparse.Namespace, *, kafka: bool = False, role: str = "cli") -> Runtime:
    """The runtime, its database sessions named ``relief-<role>``."""
    from infra.runtime import Runtime

    return Runtime.open(Settings.from_env(), kafka=kafka, role=role)


def cmd_run(args: argparse.Namespace) -> int:
    """Store, broker, relay, projection runners and API in one process."""
    import uvicorn

    from api.app import serving_app
    from infra.runtime import Workers

    settings = Settings.from_env()
    host = args.host or settings.http_host
    port = args.port if args.port is not None else settings.http_port
    runtime = _runtime(args, kafka=True, role="api")
    workers = Workers(runtime).start()
    # uvicorn re-raises the signal that stopped it once it has shut down; with a Python handler
    # in place that re-raise returns here instead of killing the process, so the clean-up below
    # (workers, broker, and the embedded PostgreSQL at exit) runs.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        n = _workers(args, settings)
        if n == 1:
            config = uvicorn.Config(serving_app(runtime), host=host, port=port, log_level="info")
        else:
            config = _worker_config(runtime.database_url, host, port, n)
        logs.install(*UVICORN_LOGGERS)  # after uvicorn configured its handlers
        print(
            f"relief-ledger serving http://{host}:{port}  (API docs: http://{host}:{port}/docs)"
            + (f"  {n} API workers" if n > 1 else ""),
            flush=True,
        )
        print(f"  database: {_describe_db(runtime.database_url)}", flush=True)
        print(f"  kafka:    {runtime.kafka_bootstrap} topic {settings.kafka_topic}", flush=True)
        print(f"  data:     {settings.data_dir}", flush=True)
        print(f"  console:  http://{host}:{port}/console/", flush=True)
        record_serving(settings, f"http://{host}:{port}")
        _serve(config)
    finally:
        forget_serving()
        workers.stop()
        runtime.close()
    return 0


def _describe_db(url: str) -> str:
    """The database URL without its password, for printing."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params.pop("password", None)
    return make_conninfo("", **params)


def cmd_api(args: argparse.Namespace) -> int:
    """Only the HTTP API (scale it out; run relay and projections elsewhere)."""
    import uvicorn

    from api.app import serving_app

    settings = Settings.from_env()
    runtime = _runtime(args, role="api")
    host = args.host or settings.http_host
    port = args.port if args.port is not None else settings.http_port
    try:
        n = _workers(args, settings)
        if n == 1:
            config = uvicorn.Config(serving_app(runtime), host=host, port=port)
        else:
            config = _worker_config(runtime.database_url, host, port, n)
        logs.install(*UVICORN_LOGGERS)
        record_serving(settings, f"http://{host}:{port}")
        _serve(config)
    finally:
        forget_serving()
        runtime.close()
    return 0


def _workers(args: argparse.Namespace, settings: Settings) -> int:
    n = args.workers if args.workers is not None else settings.workers
    if n < 1:
        raise SettingsError(f"--workers must be at least 1, got {n}")
    return int(n)


def _worker_config(database_url: str, host: str, port: int, workers: int) -> Any:
    """uvicorn's worker processes, each building its own runtime (``api.app:app_from_env``)
    over this process's database (the embedded one included: named to them by URL). Each has
    its own aggregate cache, checked against the log on every load (infra/ledger.py), so a
    write through one worker is seen by the next read through any other."""
    import uvicorn

    os.environ["RELIEF_DATABASE_URL"] = database_url
    os.environ["RELIEF_WORKERS"] = str(workers)  # each knows it has siblings (shared answers)
    return uvicorn.Config(
        "api.app:app_from_env", factory=True, host=host, port=port, workers=workers
    )


def _serve(config: Any) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    server = uvicorn.Server(config)
    if config.workers and config.workers > 1:
        sock = config.bind_socket()
        Multiprocess(config, sockets=[sock]).run()
    else:
        server.run()


def cmd_db_init(args: argparse.Namespace) -> int:
    """Create the event store and read-model schemas (safe to run concurrently)."""
    from infra.runtime import resolve_database_url
    from infra.schema import init_schema
    from projections.registry import ALL_PROJECTIONS

    init_schema(resolve_database_url(Settings.from_env()), ALL_PROJECTIONS)
    print("schema ready")
    return 0


def cmd_snapshots_take(args: argparse.Namespace) -> int:
    """Snapshot every aggregate at each multiple of the interval not yet snapshotted (a log
    written before snapshots, or after ``clear``); the ledger takes new ones as it saves."""
    runtime = _runtime(args)
    try:
        interval = args.interval or runtime.settings.snapshot_interval
        if interval < 1:
            raise SettingsError("snapshots are off (RELIEF_SNAPSHOT_INTERVAL=0); give --interval")
        bar = ProgressBar("snapshots", 0, "aggregates")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar(done)

        taken = runtime.ledger.take_snapshots(interval, progress)
        bar.close()
        print(f"{taken} snapshots taken (every {interval} events of an aggregate)")
    finally:
        runtime.close()
    return 0


def cmd_snapshots_clear(args: argparse.Namespace) -> int:
    """Drop every snapshot (after a change to an aggregate's state shape); loads replay the
    events until new ones are taken. Nothing is lost: snapshots only spare replays."""
    runtime = _runtime(args)
    try:
        print(f"{runtime.ledger.clear_snapshots()} snapshots dropped")
    finally:
        runtime.close()
    return 0


def _until_signalled() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_relay(args: argparse.Namespace) -> int:
    """Publish the log to Kafka until stopped."""
    from infra.faults import supervise

    runtime = _runtime(args, kafka=True, role="relay")
    stop = _until_signalled()
    relay = runtime.relay()
    try:
        supervise("relay", lambda: relay.run_forever(stop), stop)
    finally:
        runtime.close()
    return 0


def cmd_projections_run(args: argparse.Namespace) -> int:
    """Keep projections up to date from the chosen feed until stopped, each in its own
    process."""
    from infra.projection_processes import run_in_processes
    from projections.registry import ALL_PROJECTIONS, projection_class

    names = args.names or [p.name for p in ALL_PROJECTIONS]
    for name in names:
        projection_class(name)  # an unknown name fails here, before any process starts
    runtime = _runtime(args, kafka=args.feed == "kafka")  # schema; the embedded services
    settings = runtime.settings.with_(database_url=runtime.database_url)
    if args.feed == "kafka":
        settings = settings.with_(kafka_bootstrap=runtime.connect_kafka())
    try:
        codes = run_in_processes(settings, names, args.feed, _until_signalled())
    finally:
        runtime.close()
    return 0 if all(code in (0, -15, None) for code in codes.values()) else 1


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    """Rebuild projections from position 0, each in its own process, all at once (default:
    every projection); readers keep the old tables until each is done."""
    from api.progress import MultiProgress
    from infra.projection_processes import Progress, rebuild_in_processes
    from projections.registry import ALL_PROJECTIONS, projection_class

    names = args.names or [p.name for p in ALL_PROJECTIONS]
    for name in names:
        projection_class(name)  # an unknown name fails here, before any process starts
    runtime = _runtime(args)  # creates the schema; starts (and holds) the embedded database
    display = MultiProgress(names)
    started = time.monotonic()

    def show(report: Progress) -> None:
        note = (
            f"generation {report.generation} is live after {time.monotonic() - started:.1f} s"
            if report.generation is not None
            else f"FAILED: {report.error}"
            if report.error
            else ""
        )
        display.update(report.name, report.done, report.head, note)

    try:
        outcome = rebuild_in_processes(
            runtime.settings.with_(database_url=runtime.database_url), names, show, args.batch
        )
    finally:
        runtime.close()
    failed = [name for name, report in outcome.items() if report.error]
    for name in names:
        report = outcome[name]
        print(
            f"{name}: "
            + (
                f"FAILED: {report.error}"
                if report.error
                else f"generation {report.generation} is live"
            )
        )
    return 1 if failed else 0


def cmd_projections_status(args: argparse.Namespace) -> int:
    """Position, lag and last error of every projection."""
    from infra.projection_runner import projection_status
    from projections.registry import ALL_PROJECTIONS

    runtime = _runtime(args)
    try:
        statuses = projection_status(runtime.pool, ALL_PROJECTIONS, runtime.head_position())
    finally:
        runtime.close()
    print(f"{'projection':<16}{'gen':>4} {'feed':<9}{'position':>10}{'head':>10}{'lag':>8}  error")
    for s in statuses:
        print(
            f"{s.name:<16}{s.generation:>4} {s.feed or '-':<9}{s.position:>10}{s.head:>10}"
            f"{s.lag:>8}  {s.last_error or ''}"
        )
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Verify the chain, the seals and the signed checkpoints; exit 1 on a break, 3 when the
    log verifies but its newest checkpoint is too old or too much of it is unsigned."""
    import json
    from pathlib import Path

    import psycopg

    from infra.audit_verify import verify_as_configured
    from infra.audit_witness import load_held
    from infra.checkpoints import load_public_key
    from infra.runtime import resolve_database_url

    settings = Settings.from_env()
    trusted = (
        bytes.fromhex(args.public_key)
        if args.public_key
        else load_public_key(settings.audit_key_file)
    )
    if trusted is None:
        print(
            "warning: no trusted key given or held here: checkpoints are checked against "
            "the one key they all carry; pass --public-key",
            file=sys.stderr,
        )
    if settings.existing_cipher_key() is None:
        print(
            "warning: no cipher key here: seals are not opened, so a sealed state copied or "
            "moved by SQL is not found in the unsigned tail",
            file=sys.stderr,
        )
    held = load_held(Path(args.checkpoints)) if args.checkpoints else []
    url = resolve_database_url(settings)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM relief_events").fetchone()
    bar = None if args.json else ProgressBar("verify", int(row[0]) if row else 0)
    report = verify_as_configured(
        settings,
        url,
        trusted_key=trusted,
        held_elsewhere=held,
        open_signed=args.all_seals,
        progress=bar,
    )
    if bar is not None:
        bar.close()
    if args.json:
        print(json.dumps({**report.as_dict(), "trusted_key": trusted.hex() if trusted else None}))
    else:
        print_verification(report)
    return 0 if report.ok else 1 if not report.intact else 3


def print_verification(report: Verification) -> None:
    if report.first_break is None:
        print(
            f"intact up to position {report.intact_up_to} ({report.checked} events, "
            f"{report.checkpoints} checkpoints)"
        )
    else:
        found = report.first_break
        print(f"BROKEN at position {found.position}: {found.kind}: {found.detail}")
        print(f"intact up to position {report.intact_up_to}")
        if len(report.unopened) > 1:
            positions = ", ".join(str(f.position) for f in report.unopened[:20])
            print(f"events whose seal does not open at their place: {positions}")
    newest = report.newest_checkpoint
    if newest is None:
        print(f"NOT SIGNED: no checkpoint; {report.unsigned_events} events are not signed")
    else:
        print(
            f"signed up to position {report.signed_up_to} (newest checkpoint #{newest.sequence} "
            f"at {newest.position}, {report.checkpoint_age_s:,.0f} s old); "
            f"{report.unsigned_events} events are not signed"
        )
    if not report.seals_checked:
        print("seals not opened (no cipher key)")
    else:
        print(
            f"seals opened: {report.seals_opened} events (those no chained checkpoint "
            "vouches for; --all-seals for every one)"
        )
    if report.legacy_until:
        print(
            f"{report.legacy_events} events up to position {report.legacy_until} carry the seal "
            "from before place binding (accepted there, refused after)"
        )
    for limit in report.over_limits:
        print(f"OVER LIMIT: {limit}")


def cmd_audit_witness(args: argparse.Namespace) -> int:
    """Keep the published checkpoints in a directory; exit 1 when they no longer extend it."""
    import os
    from pathlib import Path

    from infra.audit_witness import (
        WitnessDir,
        WitnessError,
        check_extension,
        fetch_http,
        fetch_kafka,
    )

    store = WitnessDir(Path(args.dir))
    try:
        trusted = store.trusted_key(bytes.fromhex(args.public_key) if args.public_key else None)
        kept = store.kept()
        if args.url:
            token = args.token or os.environ.get("RELIEF_WITNESS_TOKEN")
            fetched = fetch_http(args.url, token, kept[-1].sequence - 1 if kept else 0)
        else:
            topic = args.topic or f"{Settings.from_env().kafka_topic}.checkpoints"
            fetched = fetch_kafka(args.kafka, topic)
    except (WitnessError, OSError, ValueError, KeyError) as error:
        print(f"witness: {error}", file=sys.stderr)
        return 1
    report = check_extension(kept, fetched, trusted)
    if not report.ok:
        print("NOT EXTENDED: the ledger's checkpoints no longer extend the witness copy")
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    store.append(report.new)
    newest = report.new[-1] if report.new else (kept[-1] if kept else None)
    print(
        f"extends the {report.kept} checkpoints kept; {len(report.new)} new kept"
        + (f"; newest #{newest.sequence} at position {newest.position}" if newest else "")
    )
    return 0


def cmd_audit_history(args: argparse.Namespace) -> int:
    """Every event of one aggregate: position, type, time, actor, reason, payload (masked)."""
    import json
    from uuid import UUID

    from infra.history import aggregate_history

    runtime = _runtime(args)
    try:
        for item in aggregate_history(runtime.pool, runtime.ledger.mapper, UUID(args.id)):
            print(json.dumps(item, ensure_ascii=False))
    finally:
        runtime.close()
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    """Write one aggregate's history with proofs and the public key to a bundle file."""
    from pathlib import Path
    from uuid import UUID

    from infra.evidence import build_bundle
    from infra.sealing import seal_of

    runtime = _runtime(args)
    try:
        data = build_bundle(
            runtime.pool, UUID(args.id), runtime.audit_key(), seal_of(runtime.ledger)
        )
    finally:
        runtime.close()
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


def cmd_audit_verify_bundle(args: argparse.Namespace) -> int:
    """Check a bundle offline (no database); exit 1 when it does not verify."""
    from pathlib import Path

    from infra.evidence import verify_bundle

    trusted = bytes.fromhex(args.public_key) if args.public_key else None
    report = verify_bundle(Path(args.file).read_bytes(), trusted)
    if report.ok:
        print(
            f"verified: {report.aggregate_id}, versions 1..{report.versions}, complete and "
            f"unaltered through signed checkpoint {report.through_position}"
        )
        if trusted is None:
            print(
                "note: checked against the key in the bundle; pass --public-key with the "
                "key obtained from the publisher to rule out a substituted key"
            )
        for note in report.notes:
            print(f"note: {note}")
        return 0
    print("REJECTED:")
    for problem in report.problems:
        print(f"  - {problem}")
    return 1


def cmd_audit_as_of(args: argparse.Namespace) -> int:
    """A case as it stood at a moment (ISO time with zone) or at a version."""
    import datetime as dt
    import json
    from uuid import UUID

    from infra.audit_chain import version_at

    runtime = _runtime(args)
    try:
        version = args.version
        if args.at:
            version = version_at(runtime.pool, UUID(args.id), dt.datetime.fromisoformat(args.at))
            if version is None:
                print("the case did not exist then")
                return 1
        case = runtime.ledger.get_case(UUID(args.id), version=version)
        print(json.dumps(case.summary(), ensure_ascii=False, indent=2))
    finally:
        runtime.close()
    return 0


#: Where a serving ``relief run``/``relief api`` says which data directory it uses, so that
#: ``relief auth token`` in another terminal (without RELIEF_DATA_DIR) finds the same key.
SERVING_RECORD = Path("~/.local/state/relief-ledger/serving.json").expanduser()


def record_serving(settings: Settings, url: str) -> None:
    """Note the serving process's data directory and address (best effort: a read-only home
    only loses the convenience)."""
    import json
    import os

    try:
        SERVING_RECORD.parent.mkdir(parents=True, exist_ok=True)
        SERVING_RECORD.write_text(
            json.dumps({"data_dir": str(settings.data_dir), "url": url, "pid": os.getpid()})
        )
    except OSError as error:
        log.debug("could not write %s: %s", SERVING_RECORD, error)


def forget_serving() -> None:
    """Remove the record at shutdown, if it is still this process's (a pid reused later must
    not point a token at a stopped server's data directory)."""
    import json
    import os

    try:
        if json.loads(SERVING_RECORD.read_text()).get("pid") == os.getpid():
            SERVING_RECORD.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def serving_data_dir() -> tuple[Path, str] | None:
    """The data directory and address of a live serving process on this machine, if any."""
    import json
    import os

    try:
        record = json.loads(SERVING_RECORD.read_text())
        pid, data_dir, url = int(record["pid"]), Path(record["data_dir"]), str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)  # alive? (signal 0 only checks)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return data_dir, url


def token_settings() -> Settings:
    """The settings a development token is minted with: RELIEF_DATA_DIR when given, else the
    data directory of the deployment serving on this machine, else the default. Says which on
    stderr, and never makes a new key: a token signed with a key no server holds is a 401."""
    import os

    settings = Settings.from_env()
    if not os.environ.get("RELIEF_DATA_DIR"):
        serving = serving_data_dir()
        if serving is not None and serving[0] != settings.data_dir:
            settings = settings.with_(data_dir=serving[0])
            print(f"using the data directory of the server at {serving[1]}", file=sys.stderr)
    key = settings.jwt_dev_key_file
    if not key.exists():
        raise SettingsError(
            f"no development key at {key}: start the server first (relief run makes it), or "
            "set RELIEF_DATA_DIR to the data directory of the server you call"
        )
    print(f"token signed with the development key {key}", file=sys.stderr)
    return settings


def cmd_auth_token(args: argparse.Namespace) -> int:
    """Mint a development bearer token signed with the embedded key (never in production)."""
    import datetime as dt

    from api.auth import mint_token

    settings = Settings.from_env()
    if settings.jwt_jwks_url or settings.jwt_public_key_path:
        print(
            "tokens come from the configured identity provider "
            "(RELIEF_JWT_JWKS_URL / RELIEF_JWT_PUBLIC_KEY); the development key is not trusted",
            file=sys.stderr,
        )
        return 2
    settings = token_settings()
    print(
        mint_token(
            settings,
            subject=args.sub,
            role=args.role,
            organisation=args.org,
            scope=args.scope,
            lifetime=dt.timedelta(hours=args.hours),
        )
    )
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Write a deterministic synthetic province through the application's commands (bulk path)."""
    _dev_tools()
    from tools.synthetic.province import SimulatedClock, seed_province

    runtime = _runtime(args)
    started = time.monotonic()
    try:
        clock = SimulatedClock(runtime.services.clock.today())
        bulk = runtime.bulk(clock)
        ledger = bulk.store
        bar = ProgressBar("seed", args.households, "households")
        seed_province(
            bulk,
            clock,
            households=args.households,
            seed=args.seed,
            progress=lambda done, events: bar(done, f"({events:,} events)"),
        )
        bar.close()
        elapsed = time.monotonic() - started
        print(
            f"seeded {args.households:,} households (seed {args.seed}): "
            f"{ledger.events_written:,} events in {elapsed:,.1f}s "
            f"({ledger.events_written / max(elapsed, 1e-6):,.0f} events/s); "
            "projections catch up when the runners next run (relief run)"
        )
        ledger.close()
    finally:
        runtime.close()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import a legacy system's cases (JSON lines), line by line; rejects are reported."""
    import json
    from pathlib import Path

    from domain.clock import SetClock
    from infra.legacy_import import import_lines

    source = Path(args.file)
    total = sum(1 for line in source.open(encoding="utf-8") if line.strip())
    runtime = _runtime(args)
    started = time.monotonic()
    try:
        bulk = runtime.bulk(SetClock(runtime.services.clock.now()))
        bar = ProgressBar("import", total, "lines")
        with source.open(encoding="utf-8") as lines:
            report = import_lines(
                bulk, lines, progress=lambda done, rejected: bar(done, f"({rejected} rejected)")
            )
        bar.close()
        bulk.close()
    finally:
        runtime.close()
    elapsed = time.monotonic() - started
    rejects_file = Path(args.rejects or f"{source}.rejects.jsonl")
    with rejects_file.open("w", encoding="utf-8") as out:
        for reject in report.rejects:
            out.write(json.dumps(reject.as_dict(), ensure_ascii=False) + "\n")
    print(
        f"imported {report.imported:,} of {report.read:,} lines: {report.events:,} events in "
        f"{elapsed:,.1f}s ({report.events / max(elapsed, 1e-6):,.0f} events/s); "
        f"{len(report.rejects):,} rejected, listed in {rejects_file}"
    )
    return 0 if not report.rejects else 3


def cmd_divisions_import(args: argparse.Namespace) -> int:
    """Import a division list (the register file, or the statistics bureau's list): writes
    only what it changes in the register."""
    from pathlib import Path

    from domain.errors import DomainError
    from infra.divisions_file import DivisionFileError, read_division_file

    try:
        listed = read_division_file(Path(args.file))
    except (OSError, DivisionFileError) as error:
        print(f"relief divisions import: {error}", file=sys.stderr)
        return 2
    runtime = _runtime(args)
    started = time.monotonic()
    try:
        report = runtime.load_divisions(listed, actor=args.actor)
    except DomainError as error:
        print(f"relief divisions import: refused: {error.message}", file=sys.stderr)
        return 3
    finally:
        runtime.close()
    print(
        f"{args.file}: {len(listed.divisions):,} divisions listed, effective from "
        f"{listed.effective_from}; wrote {report.written:,} events: {report.established:,} "
        f"established, {report.renamed:,} renamed, {report.abolished:,} abolished"
        + (f"; {report.ended:,} listed codes ended earlier, left alone" if report.ended else "")
        + f" ({time.monotonic() - started:,.1f}s)"
    )
    return 0


def _standards_provenance(args: argparse.Namespace) -> Any:
    from domain.provenance import Actor, Provenance

    return Provenance(Actor(args.actor, Role(args.role), args.org), reason=args.reason)


def _print_outcomes(outcomes: Sequence[Any]) -> None:
    for o in outcomes:
        v = o.version
        print(
            f"{o.kind:9} {o.programme} {o.division} from {v.effective_from.isoformat()}: "
            f"{v.monthly_amount} CNY per head and month ({v.source}), version {v.version}"
            + (f", corrects version {v.corrects}" if v.corrects is not None else "")
        )


def cmd_standards_set(args: argparse.Namespace) -> int:
    """Set one minimum-living standard (an approver or supervisor): a date that has another
    figure is corrected (give --reason), the same figure again records nothing."""
    import datetime as dt

    from domain.commands.standards import SetStandard
    from domain.errors import DomainError

    try:
        effective = dt.date.fromisoformat(args.effective_from)
    except ValueError:
        print("relief standards set: --effective-from is a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    runtime = _runtime(args)
    try:
        outcome = runtime.services.standards.set_standard(
            SetStandard(
                division=args.division,
                programme=args.programme,
                effective_from=effective,
                monthly_amount=args.amount,
                source=args.source,
                reason=args.reason,
                provenance=_standards_provenance(args),
            )
        )
    except DomainError as error:
        print(f"relief standards set: refused ({error.field}): {error.message}", file=sys.stderr)
        return 3
    finally:
        runtime.close()
    _print_outcomes([outcome])
    return 0


def cmd_standards_load(args: argparse.Namespace) -> int:
    """Load a published list of minimum-living standards (a JSON list; README), all or none:
    new dates are set, changed figures corrected (with --reason or each entry's reason)."""
    import json
    from decimal import Decimal

    from domain.errors import DomainError
    from services.standards import standards_from_document

    try:
        document = json.loads(Path(args.file).read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, ValueError) as error:
        print(f"relief standards load: {args.file}: {error}", file=sys.stderr)
        return 2
    runtime = _runtime(args)
    try:
        commands = standards_from_document(document, _standards_provenance(args))
        outcomes = runtime.services.standards.load_standards(commands, listed_as="standards")
    except DomainError as error:
        print(
            f"relief standards load: refused, nothing recorded ({error.field}): {error.message}",
            file=sys.stderr,
        )
        return 3
    finally:
        runtime.close()
    _print_outcomes(outcomes)
    counts = {kind: sum(o.kind == kind for o in outcomes) for kind in ("set", "corrected")}
    print(
        f"{args.file}: {len(outcomes)} standards listed: {counts['set']} set, "
        f"{counts['corrected']} corrected, {len(outcomes) - sum(counts.values())} unchanged"
    )
    return 0


def cmd_policy_load(args: argparse.Namespace) -> int:
    """Load a staffing band table (a JSON file stating its source): adopted for its effective
    date, recorded as a correction of the table adopted for that date (needs --reason), or
    nothing when it is that table already. By an approver or supervisor."""
    from pathlib import Path

    from domain.errors import DomainError
    from domain.provenance import Actor, Provenance, Role
    from domain.staffing import LoadOutcome
    from infra.policies import PolicyFileError, read_policy_file

    try:
        document = read_policy_file(Path(args.file))
        role = Role(args.role)
        provenance = Provenance(Actor(args.actor, role, args.organisation), reason=args.reason)
    except PolicyFileError as error:
        print(f"relief policy load: {error}", file=sys.stderr)
        return 2
    except ValueError:
        print(f"relief policy load: no role {args.role!r}", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"relief policy load: refused: {error.message}", file=sys.stderr)
        return 3
    runtime = _runtime(args)
    try:
        loaded = runtime.load_policy(document, provenance)
    except DomainError as error:
        where = f" ({error.field})" if error.field else ""
        print(f"relief policy load: refused{where}: {error.message}", file=sys.stderr)
        return 3
    finally:
        runtime.close()
    version = loaded.version
    said = {
        LoadOutcome.ADOPTED: "adopted",
        LoadOutcome.CORRECTED: f"corrected (revision {version.revision} corrects revision "
        f"{version.corrects})",
        LoadOutcome.UNCHANGED: f"unchanged: revision {version.revision} is this table already",
    }[loaded.outcome]
    print(
        f"{args.file}: band table {version.table.name!r} from "
        f"{version.effective_from.isoformat()}: {said}"
    )
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    """Honest province plus injected misconduct in variants with near-miss twins; red flags'
    recall and precision per rule, twins flagged, false alerts on honest households."""
    _dev_tools()
    from tools.synthetic.misconduct import (
        build_scenario,
        honest_false_alerts,
        project_scenario,
        scenario_report,
        score,
    )
    from tools.synthetic.province import SimulatedClock

    runtime = _runtime(args)
    try:
        if runtime.events_beyond_register():
            print(
                "the scenario needs an empty ledger (its red flags run with the scenario's "
                "thresholds): point RELIEF_DATA_DIR or RELIEF_DATABASE_URL at a new one",
                file=sys.stderr,
            )
            return 2
        clock = SimulatedClock(runtime.services.clock.today())
        bulk = runtime.bulk(clock)
        print(
            f"scenario: writing {args.households:,} households (seed {args.seed})", file=sys.stderr
        )
        bar = ProgressBar("scenario", args.households, "households")
        injected = build_scenario(
            bulk,
            clock,
            households=args.households,
            seed=args.seed,
            progress=lambda done, events: bar(done, f"({events:,} events)"),
        )
        bar.close()
        bulk.close()
        print("scenario: misconduct injected; running the red flags over the log", file=sys.stderr)
        started = time.monotonic()
        project_scenario(runtime)
        print(
            f"scenario: red flags judged in {time.monotonic() - started:,.1f} s; scoring",
            file=sys.stderr,
        )
        with runtime.pool.connection() as conn, conn.cursor() as cursor:
            honest = honest_false_alerts(cursor, injected)
            print(scenario_report(score(cursor, injected), injected, len(honest)))
            for rule, subject, reason in honest:
                print(f"- false alert {rule} on {subject}: {reason[:200]}")
    finally:
        runtime.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relief",
        description="relief-ledger: event-sourced social-assistance case management. "
        "Configuration comes from RELIEF_* environment variables (see README).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help=cmd_run.__doc__)
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--workers", type=int, help="API worker processes (RELIEF_WORKERS)")
    run.set_defaults(func=cmd_run)

    api = sub.add_parser("api", help=cmd_api.__doc__)
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.add_argument("--workers", type=int, help="worker processes (RELIEF_WORKERS)")
    api.set_defaults(func=cmd_api)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("init", help=cmd_db_init.__doc__).set_defaults(func=cmd_db_init)

    sub.add_parser("relay", help=cmd_relay.__doc__).set_defaults(func=cmd_relay)

    snapshots = sub.add_parser("snapshots", help="snapshots of aggregates").add_subparsers(
        dest="snapshots_command", required=True, metavar="ACTION"
    )
    take = snapshots.add_parser("take", help=cmd_snapshots_take.__doc__)
    take.add_argument("--interval", type=int, help="default: RELIEF_SNAPSHOT_INTERVAL")
    take.set_defaults(func=cmd_snapshots_take)
    snapshots.add_parser("clear", help=cmd_snapshots_clear.__doc__).set_defaults(
        func=cmd_snapshots_clear
    )

    projections = sub.add_parser("projections", help="read-model projections").add_subparsers(
        dest="projections_command", required=True, metavar="ACTION"
    )
    prun = projections.add_parser("run", help=cmd_projections_run.__doc__)
    prun.add_argument("names", nargs="*", help="projections to run (default: all)")
    prun.add_argument("--feed", choices=("postgres", "kafka"), default="postgres")
    prun.set_defaults(func=cmd_projections_run)
    rebuild = projections.add_parser("rebuild", help=cmd_projections_rebuild.__doc__)
    rebuild.add_argument("names", nargs="*", help="projections to rebuild (default: all)")
    from infra.projection_processes import REBUILD_BATCH

    rebuild.add_argument(
        "--batch",
        type=int,
        default=REBUILD_BATCH,
        help=f"events per transaction (default {REBUILD_BATCH})",
    )
    rebuild.set_defaults(func=cmd_projections_rebuild)
    projections.add_parser("status", help=cmd_projections_status.__doc__).set_defaults(
        func=cmd_projections_status
    )
    audit = sub.add_parser("audit", help="for auditors").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    verify = audit.add_parser("verify", help=cmd_audit_verify.__doc__)
    verify.add_argument("--public-key", help="hex Ed25519 key the checkpoints must be signed by")
    verify.add_argument(
        "--checkpoints",
        help="checkpoints held outside the database: a witness directory, or JSON as GET "
        "/audit/checkpoints serves them; each must still be there, unchanged",
    )
    verify.add_argument(
        "--json", action="store_true", help="the report as JSON (first break, how far signed)"
    )
    verify.add_argument(
        "--all-seals",
        action="store_true",
        help="open every event's seal, also where chained checkpoints vouch for them",
    )
    verify.set_defaults(func=cmd_audit_verify)
    witness = audit.add_parser("witness", help=cmd_audit_witness.__doc__)
    witness.add_argument("--dir", required=True, help="where the witness keeps its copies")
    source = witness.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="the ledger's API, e.g. https://ledger.example")
    source.add_argument("--kafka", metavar="BOOTSTRAP", help="read <topic>.checkpoints here")
    witness.add_argument("--token", help="bearer token of an auditor (or RELIEF_WITNESS_TOKEN)")
    witness.add_argument(
        "--topic", help="checkpoints topic (default: RELIEF_KAFKA_TOPIC.checkpoints)"
    )
    witness.add_argument("--public-key", help="hex Ed25519 key; required on the first run")
    witness.set_defaults(func=cmd_audit_witness)
    history = audit.add_parser("history", help=cmd_audit_history.__doc__)
    history.add_argument("id", help="aggregate id (case, contract, contractor, staff member)")
    history.set_defaults(func=cmd_audit_history)
    export = audit.add_parser("export", help=cmd_audit_export.__doc__)
    export.add_argument("id")
    export.add_argument("--out", required=True)
    export.set_defaults(func=cmd_audit_export)
    check = audit.add_parser("verify-bundle", help=cmd_audit_verify_bundle.__doc__)
    check.add_argument("file")
    check.add_argument("--public-key", help="hex Ed25519 key published by the ledger")
    check.set_defaults(func=cmd_audit_verify_bundle)
    as_of = audit.add_parser("as-of", help=cmd_audit_as_of.__doc__)
    as_of.add_argument("id")
    when = as_of.add_mutually_exclusive_group(required=True)
    when.add_argument("--at")
    when.add_argument("--version", type=int)
    as_of.set_defaults(func=cmd_audit_as_of)
    seed = sub.add_parser("seed", help=cmd_seed.__doc__)
    seed.add_argument("--households", type=int, required=True)
    seed.add_argument("--seed", type=int, default=1, help="same seed, same province")
    seed.set_defaults(func=cmd_seed)

    scenario = sub.add_parser("scenario", help=cmd_scenario.__doc__)
    scenario.add_argument("--households", type=int, default=300)
    scenario.add_argument("--seed", type=int, default=7)
    scenario.set_defaults(func=cmd_scenario)

    divisions = sub.add_parser("divisions", help="the division register").add_subparsers(
        dest="divisions_command", required=True, metavar="COMMAND"
    )
    dimport = divisions.add_parser("import", help=cmd_divisions_import.__doc__)
    dimport.add_argument("file", help="a division list (.csv, .txt, optionally .gz)")
    dimport.add_argument("--actor", default="relief-cli", help="recorded as who imported it")
    dimport.set_defaults(func=cmd_divisions_import)

    standards = sub.add_parser(
        "standards", help="the local minimum-living standards (低保标准, 特困供养标准)"
    ).add_subparsers(dest="standards_command", required=True, metavar="COMMAND")
    sset = standards.add_parser("set", help=cmd_standards_set.__doc__)
    sset.add_argument("--division", required=True, help="province, prefecture or county code")
    sset.add_argument("--programme", required=True, choices=("dibao", "tekun"))
    sset.add_argument("--effective-from", required=True, help="YYYY-MM-DD")
    sset.add_argument("--amount", required=True, help="yuan per head and month, e.g. 1120")
    sset.add_argument("--source", required=True, help="the notice it is published in")
    sset.set_defaults(func=cmd_standards_set)
    sload = standards.add_parser("load", help=cmd_standards_load.__doc__)
    sload.add_argument("file", help="a JSON list of standards (format: README)")
    sload.set_defaults(func=cmd_standards_load)
    for command in (sset, sload):
        command.add_argument("--actor", required=True, help="who sets them (recorded)")
        command.add_argument("--role", required=True, choices=("approver", "supervisor"))
        command.add_argument("--org", required=True, help="the acting authority's division code")
        command.add_argument("--reason", help="why (needed when a figure is corrected)")
    policy = sub.add_parser("policy", help="policy recorded as events").add_subparsers(
        dest="policy_command", required=True, metavar="COMMAND"
    )
    pload = policy.add_parser("load", help=cmd_policy_load.__doc__)
    pload.add_argument("file", help="a band table (JSON, as POST /staffing/policies takes it)")
    pload.add_argument("--actor", required=True, help="recorded as who loaded it")
    pload.add_argument(
        "--role", required=True, help="the actor's role (an approver or supervisor loads policy)"
    )
    pload.add_argument("--organisation", default="44", help="the actor's organisation")
    pload.add_argument("--reason", help="why (a correction needs one)")
    pload.set_defaults(func=cmd_policy_load)

    legacy = sub.add_parser("import", help=cmd_import.__doc__)
    legacy.add_argument("file", help="JSON lines, one legacy case per line (format: README)")
    legacy.add_argument(
        "--rejects", help="where to list rejected lines (default FILE.rejects.jsonl)"
    )
    legacy.set_defaults(func=cmd_import)

    auth = sub.add_parser("auth", help="development identity").add_subparsers(
        dest="auth_command", required=True, metavar="ACTION"
    )
    mint = auth.add_parser("token", help=cmd_auth_token.__doc__)
    mint.add_argument("--sub", required=True, help="who acts (recorded on every event)")
    mint.add_argument("--role", required=True, choices=[r.value for r in TOKEN_ROLES])
    mint.add_argument(
        "--org", required=True, help="county code (government) or credit code (contractor)"
    )
    mint.add_argument("--scope", required=True, help="division-code prefix, e.g. 44 or 440103")
    mint.add_argument("--hours", type=float, default=8.0, help="lifetime (default 8)")
    mint.set_defaults(func=cmd_auth_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kafka", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logs.install()
    try:
        return int(args.func(args))
    except SettingsError as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
