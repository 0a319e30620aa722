"""Projection runner on a real PostgreSQL: batches, exactly-once effect, halts, rebuilds."""

import threading
import time

import psycopg
import pytest

from domain.case import ReliefCase
from infra.projection_runner import (
    PostgresFeedRunner,
    ProjectionHalted,
    projection_status,
    rebuild,
)
from infra.runtime import Runtime
from infra.schema import create_generation
from projections.base import RecordedEvent, handles
from projections.caseload import CaseloadProjection
from projections.registry import ALL_PROJECTIONS
from tests.integration.helpers import (
    caseload_rows,
    expected_caseload,
    register_head,
    table_rows,
    write_history,
)
from tests.scenario import application

pytestmark = pytest.mark.integration


def runner(  # type: ignore[no-untyped-def]
    runtime: Runtime, runner_class: type[PostgresFeedRunner] = PostgresFeedRunner, **kwargs
) -> PostgresFeedRunner:
    kwargs.setdefault("batch_size", 50)
    return runner_class(
        runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, CaseloadProjection, **kwargs
    )


def test_catch_up_commits_in_batches_and_matches_the_aggregates(runtime: Runtime) -> None:
    cases = write_history(runtime, 120)
    head = runtime.head_position()
    r = runner(runtime)
    batches = []
    while (count := r.run_once()) > 0:
        batches.append(count)
    # every position after the register (which the template's runner applied) covered, the
    # topics it skips included
    assert sum(batches) == head - register_head(runtime.database_url)
    read = sum(
        1
        for n in runtime.ledger.recorder.select_notifications(start=None, limit=10_000)
        if n.topic in CaseloadProjection.topics()
    )
    assert len(batches) == -(-read // 50)  # one transaction per 50 events read, not per event
    assert caseload_rows(runtime.database_url) == expected_caseload(runtime.ledger, cases)
    status = next(
        s for s in projection_status(runtime.pool, ALL_PROJECTIONS, head) if s.name == "caseload"
    )
    assert status.position == head and status.lag == 0 and status.feed == "postgres"


def test_a_runner_behind_takes_larger_batches_until_it_reaches_the_head(
    runtime: Runtime,
) -> None:
    cases = write_history(runtime, 120)
    r = runner(runtime, batch_size=20, catch_up_batch=70)
    read: list[int] = []
    apply = r.applier.apply

    def counting(conn: psycopg.Connection, events: list[RecordedEvent]) -> None:
        read.append(len(events))
        apply(conn, events)

    r.applier.apply = counting  # type: ignore[method-assign]
    while r.run_once() > 0:
        pass
    # the first batch at the live size, the next ones (behind: the last batch was full) at the
    # catch-up size, the last one what was left
    assert read[0] == 20 and len(read) > 2
    assert all(count == 70 for count in read[1:-1]) and 0 < read[-1] <= 70, read
    assert caseload_rows(runtime.database_url) == expected_caseload(runtime.ledger, cases)
    # at the head: the live size again
    write_history(runtime, 1)
    read.clear()
    r.run_once()
    assert 0 < read[0] <= 20


def test_a_batch_read_ahead_is_applied_only_where_the_runner_stands(runtime: Runtime) -> None:
    """A runner behind reads the next batch with each one (and decodes it while the server
    writes): another runner of the projection that moved on in between makes it read again,
    so no event is applied twice or skipped."""
    cases = write_history(runtime, 60)
    first = runner(runtime, batch_size=20, catch_up_batch=20)
    second = runner(runtime, batch_size=20, catch_up_batch=20)
    assert first.run_once() > 0  # full: it read the batch after too
    assert first._ahead is not None and first._ahead.rows
    assert second.run_once() > 0  # applied what the first read ahead
    covered = [first.run_once(), second.run_once()]
    while (count := first.run_once()) > 0:
        covered.append(count)
    assert sum(covered) > 0
    assert caseload_rows(runtime.database_url) == expected_caseload(runtime.ledger, cases)


def test_an_event_read_ahead_that_does_not_decode_halts_its_own_batch(runtime: Runtime) -> None:
    """Decoded ahead of its turn, an event that does not decode is left to its own batch: the
    batches before it commit, and the halt names its position."""
    write_history(runtime, 30)
    start = register_head(runtime.database_url)
    read = [
        n.id
        for n in runtime.ledger.recorder.select_notifications(start=start + 1, limit=10_000)
        if n.topic in CaseloadProjection.topics()
    ]
    bad_position = read[30]  # in the second batch of 20

    class Undecodable(PostgresFeedRunner):
        def decode(self, row: tuple[object, ...]) -> RecordedEvent:
            if row[0] == bad_position:
                raise ProjectionHalted("caseload", bad_position, str(row[3]), ValueError("bad"))
            return super().decode(row)

    r = runner(runtime, Undecodable, batch_size=20, catch_up_batch=20)
    assert r.run_once() > 0  # the first batch, with the second read and decoded meanwhile
    with pytest.raises(ProjectionHalted) as halted:
        r.run_once()
    assert halted.value.position == bad_position
    status = next(
        s
        for s in projection_status(runtime.pool, ALL_PROJECTIONS, runtime.head_position())
        if s.name == "caseload"
    )
    assert status.position == read[19]  # the first batch committed; the second did not


def test_a_crash_between_write_and_commit_never_double_counts(runtime: Runtime) -> None:
    cases = write_history(runtime, 60)

    class Crash(Exception):
        pass

    def crash(_position: int) -> None:
        raise Crash

    crashing = runner(runtime, before_commit=crash)
    with pytest.raises(Crash):
        crashing.run_once()
    with pytest.raises(Crash):
        crashing.run_once()
    assert caseload_rows(runtime.database_url) == []  # nothing of the failed batches stayed

    r = runner(runtime)
    r.catch_up()
    r.catch_up()  # running again after catching up changes nothing
    rows = caseload_rows(runtime.database_url)
    assert rows == expected_caseload(runtime.ledger, cases)


def test_a_live_runner_lingers_after_a_wake_up_to_apply_the_commits_behind_it_together(
    runtime: Runtime,
) -> None:
    """Woken by a commit, a live runner waits ``linger_s`` for the commits right behind it
    and applies them in one batch (one transaction, one judgement); without lingering the
    first commit is applied alone."""
    for linger_s, most_batches in ((3.0, 1), (0.0, None)):
        r = runner(runtime, linger_s=linger_s)
        r.catch_up()
        batches: list[int] = []
        r.before_commit = batches.append
        stop = threading.Event()
        worker = threading.Thread(target=r.run_forever, args=(stop,), kwargs={"idle_wait_s": 5})
        worker.start()
        try:
            time.sleep(0.5)  # listening, idle
            for county in ("440103", "440104", "440105"):
                application(runtime, county)  # commits 0.3 s apart
                time.sleep(0.3)
            head = runtime.head_position()
            deadline = time.monotonic() + 30
            while not batches or batches[-1] < head:
                assert time.monotonic() < deadline, "the runner did not reach the head"
                time.sleep(0.05)
        finally:
            stop.set()
            worker.join(10)
        if most_batches is not None:
            assert len(batches) <= most_batches, batches
        else:
            assert len(batches) > 1, batches  # the first commit alone, then the rest


class Fragile(CaseloadProjection):
    """Fails on cases of one county until ``broken`` is cleared."""

    broken = True

    @handles(ReliefCase.ApplicationReceived)
    def received(self, cursor, recorded: RecordedEvent) -> None:  # type: ignore[no-untyped-def]
        if Fragile.broken and recorded.event.jurisdiction_county == "440606":
            raise ValueError("cannot handle this county")
        super().received(cursor, recorded)


def test_a_bad_event_halts_at_its_position_and_resumes_once_fixed(runtime: Runtime) -> None:
    ledger = runtime.ledger
    application(runtime, "440103")
    bad = application(runtime, "440606")
    application(runtime, "440103")
    bad_position = next(
        n.id
        for n in ledger.recorder.select_notifications(
            start=register_head(runtime.database_url) + 1, limit=100
        )
        if n.originator_id == bad.id
    )
    fragile = PostgresFeedRunner(runtime.pool, ledger.recorder, ledger.mapper, Fragile)
    stop = threading.Event()
    with pytest.raises(ProjectionHalted) as halted:
        fragile.run_forever(stop)
    assert halted.value.position == bad_position
    assert f"position {bad_position}" in str(halted.value)
    status = next(
        s
        for s in projection_status(runtime.pool, ALL_PROJECTIONS, runtime.head_position())
        if s.name == "caseload"
    )
    assert status.last_error_position == bad_position
    assert status.position == register_head(runtime.database_url)  # where the template left it
    assert caseload_rows(runtime.database_url) == []  # the batch was rolled back, not skipped

    Fragile.broken = False
    try:
        fragile.catch_up()
    finally:
        Fragile.broken = True
    assert caseload_rows(runtime.database_url) == [
        ("440103001001", "dibao", "received", 2, 2),
        ("440606001001", "dibao", "received", 1, 1),
    ]


def test_rebuild_equals_the_incremental_build_and_readers_never_see_a_gap(
    runtime: Runtime,
) -> None:
    write_history(runtime, 150)
    runner(runtime).catch_up()
    incremental = caseload_rows(runtime.database_url)
    incremental_index = table_rows(runtime.database_url, "rm_caseload_g1", "case_index", "case_id")

    seen: list[list[tuple]] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            seen.append(caseload_rows(runtime.database_url))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        generation = rebuild(
            runtime.pool,
            runtime.ledger.recorder,
            runtime.ledger.mapper,
            CaseloadProjection,
            batch_size=20,
        )
    finally:
        stop.set()
        reader.join()
    assert generation == 2
    assert caseload_rows(runtime.database_url) == incremental
    assert table_rows(runtime.database_url, "rm_caseload_g2", "case_index", "case_id") == (
        incremental_index
    )
    assert seen and all(rows == incremental for rows in seen)  # old table served until the switch
    with psycopg.connect(runtime.database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'rm_caseload_g1'"
        ).fetchone() == (0,)


def test_rebuild_while_events_keep_arriving_loses_nothing(runtime: Runtime) -> None:
    cases = write_history(runtime, 80)
    live = runner(runtime)
    live.catch_up()
    stop = threading.Event()
    more: list = []

    def keep_writing() -> None:
        while not stop.is_set():
            more.append(application(runtime).id)

    def keep_projecting() -> None:
        while not stop.is_set():
            if live.run_once() == 0:
                time.sleep(0.01)

    threads = [threading.Thread(target=keep_writing), threading.Thread(target=keep_projecting)]
    for thread in threads:
        thread.start()
    try:
        rebuild(
            runtime.pool,
            runtime.ledger.recorder,
            runtime.ledger.mapper,
            CaseloadProjection,
            batch_size=25,
        )
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    live.catch_up()
    assert more, "the writer kept writing during the rebuild"
    assert caseload_rows(runtime.database_url) == expected_caseload(runtime.ledger, cases + more)


def test_a_generation_built_from_one_feed_refuses_the_other(runtime: Runtime) -> None:
    from infra.projection_runner import FeedMismatch

    write_history(runtime, 5)
    runner(runtime).catch_up()
    with runtime.pool.connection() as conn:
        conn.execute("UPDATE rm_caseload_g1._tracking SET feed = 'kafka'")
    with pytest.raises(FeedMismatch):
        runner(runtime).run_once()


def test_create_generation_is_isolated_per_schema(runtime: Runtime) -> None:
    with runtime.pool.connection() as conn, conn.transaction():
        create_generation(conn, CaseloadProjection, "rm_caseload_scratch")
    write_history(runtime, 10)
    runner(runtime, schema="rm_caseload_scratch").catch_up()
    assert caseload_rows(runtime.database_url, "rm_caseload_scratch")
    assert caseload_rows(runtime.database_url) == []  # the active generation was not touched


@pytest.mark.parametrize("projection", ALL_PROJECTIONS, ids=lambda p: p.name)
def test_every_projection_rebuilds_to_the_incrementally_built_tables(
    runtime: Runtime, projection: type
) -> None:
    from tests.integration.helpers import projection_tables
    from tests.scenario import write_rich_history

    write_rich_history(runtime)
    PostgresFeedRunner(
        runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, projection, batch_size=7
    ).catch_up()
    incremental = projection_tables(runtime, f"rm_{projection.name}_g1")
    assert incremental and all(incremental.values())
    rebuild(
        runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, projection, batch_size=500
    )
    assert projection_tables(runtime, f"rm_{projection.name}_g2") == incremental


def test_the_rebuild_command_rebuilds_in_processes_and_never_stalls_other_runners(
    runtime: Runtime,
) -> None:
    """``relief projections rebuild`` (every projection, a process each, plain progress lines
    when not on a terminal) while the caseload's live runner keeps applying new events."""
    import os
    import subprocess
    import sys

    from tests.scenario import write_rich_history

    write_rich_history(runtime)
    live = runner(runtime)
    live.catch_up()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELIEF_")}
    env.update(
        RELIEF_DATABASE_URL=runtime.database_url,
        RELIEF_DATA_DIR=str(runtime.settings.data_dir),
    )
    command = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())"]
    rebuilding = subprocess.Popen(
        # many small batches: the rebuild takes a while
        [*command, "projections", "rebuild", "staffing", "red_flags", "--batch", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    applied_while_rebuilding = 0
    slowest = 0.0
    while rebuilding.poll() is None:
        application(runtime)
        started = time.monotonic()
        applied_while_rebuilding += live.run_once()
        slowest = max(slowest, time.monotonic() - started)
    out, err = rebuilding.communicate()
    assert rebuilding.returncode == 0, err
    assert out.splitlines() == [
        "staffing: generation 2 is live",
        "red_flags: generation 2 is live",
    ]
    assert "generation 2 is live" in err and "\x1b[" not in err  # plain lines, no terminal
    assert applied_while_rebuilding > 0 and slowest < 5.0
    statuses = {s.name: s for s in projection_status(runtime.pool, ALL_PROJECTIONS, 0)}
    assert statuses["caseload"].generation == 1
    assert statuses["staffing"].generation == statuses["red_flags"].generation == 2
    # red_flags was rebuilt in two processes (its facts, its rules behind them): it concludes
    # what a rebuild in one process does.
    from projections.red_flags.projection import RedFlagsProjection
    from tests.integration.helpers import projection_conclusions

    PostgresFeedRunner(  # the events written since its switch
        runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, RedFlagsProjection
    ).catch_up()
    two_stages = projection_conclusions(runtime, "rm_red_flags_g2")
    assert two_stages["alerts"] and two_stages["rf_record"]
    rebuild(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        RedFlagsProjection,
        batch_size=500,
    )
    assert projection_conclusions(runtime, "rm_red_flags_g3") == two_stages


def test_a_rebuild_analyses_a_table_each_time_it_has_doubled(runtime: Runtime) -> None:
    """A rebuild's new tables get statistics as they grow, each on its own: a table the log's
    first events leave empty is analysed once it holds rows, not at a fixed position."""
    from infra.projection_runner import ANALYZE_MIN_ROWS, analyze

    def grow(table: str, rows: int) -> None:
        with psycopg.connect(runtime.database_url) as conn:
            conn.execute(f"INSERT INTO grow_stats.{table} SELECT generate_series(1, %s)", (rows,))
            conn.execute("SELECT pg_stat_force_next_flush()")  # the counts seen at once

    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA grow_stats")
        conn.execute("CREATE TABLE grow_stats.big (n integer)")
        conn.execute("CREATE TABLE grow_stats.small (n integer)")
    grow("big", ANALYZE_MIN_ROWS + 500)
    grow("small", 10)
    assert analyze(runtime.pool, "grow_stats", grown_only=True) == ["big"]
    assert analyze(runtime.pool, "grow_stats", grown_only=True) == []
    grow("big", ANALYZE_MIN_ROWS)  # less than it held when analysed
    assert analyze(runtime.pool, "grow_stats", grown_only=True) == []
    grow("big", 600)  # now more than it held
    assert analyze(runtime.pool, "grow_stats", grown_only=True) == ["big"]
    assert sorted(analyze(runtime.pool, "grow_stats")) == ["big", "small"]
