"""The event store on a real PostgreSQL: one ordered log, provenance on every event, conflicts."""

import datetime as dt
import multiprocessing
import threading
import uuid
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError

from domain.clock import BUSINESS_TZ, business_date
from domain.commands.cases import CloseCase
from domain.errors import CaseAlreadyClosed, NotFound, VersionMismatch
from infra.projection_runner import advance_tracking, mark_batch, minute_of
from infra.runtime import Runtime
from infra.schema import init_schema
from projections.base import RecordedEvent
from projections.caseload import CaseloadProjection
from projections.registry import ALL_PROJECTIONS
from tests.factories import approver
from tests.integration.helpers import register_head
from tests.scenario import application, approve

pytestmark = pytest.mark.integration


def test_cases_are_stored_in_one_ordered_log_with_provenance(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    first = application(runtime, "440103")
    second = application(runtime, "440305", "tekun")
    services.cases.close_case(
        CloseCase(case_id=first.id, reason_code="voluntary", provenance=approver("440103"))
    )

    notifications = ledger.recorder.select_notifications(
        start=register_head(runtime.database_url) + 1, limit=100
    )
    case_events = [
        (n.originator_id, n.originator_version)
        for n in notifications
        if n.originator_id in (first.id, second.id)
    ]
    assert case_events == [(first.id, 1), (second.id, 1), (first.id, 2)]
    assert [n.id for n in notifications] == sorted(n.id for n in notifications)
    stored = next(
        n for n in notifications if (n.originator_id, n.originator_version) == (first.id, 2)
    )
    closed = ledger.mapper.to_domain_event(stored)
    assert closed.reason_code == "voluntary"
    assert closed.provenance.to_dict() == {
        "actor_id": "approver-1",
        "actor_role": "approver",
        "actor_organisation": "440103",
        "reason": "county decision",
        "correlation_id": None,
    }
    assert closed.timestamp.tzinfo is not None
    reloaded = ledger.get_case(first.id)
    assert reloaded.status.value == "closed" and reloaded.version == 2
    assert ledger.get_case(first.id, version=1).status.value == "received"


def test_personal_data_is_encrypted_at_rest(runtime: Runtime, database_url: str) -> None:
    """The raw stored bytes (as a backup or a DBA sees them) hold no ID number or name."""
    ledger = runtime.ledger
    case = application(runtime, "440103")
    household = ledger.get_household(case.household_id)
    secrets = set()
    for member in household.members.values():
        secrets |= {member.resident_id, member.name}
    assert secrets
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT topic, state FROM relief_events").fetchall()
        dump = b"".join(bytes(state) for _, state in rows)
    assert len(rows) >= 3
    for secret in secrets:
        assert secret.encode("utf-8") not in dump, "personal data stored in clear"
    assert b"timestamp" not in dump  # the whole state is sealed, not just chosen fields
    assert ledger.get_case(case.id).applicant_id in secrets  # and the ledger reads it back


def test_refusals_record_nothing(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    case = application(runtime)
    services.cases.close_case(
        CloseCase(case_id=case.id, reason_code="death", provenance=approver())
    )
    head = ledger.recorder.max_notification_id()
    with pytest.raises(CaseAlreadyClosed):
        services.cases.close_case(
            CloseCase(case_id=case.id, reason_code="death", provenance=approver())
        )
    with pytest.raises(NotFound):
        ledger.get_case(uuid.uuid4())
    assert ledger.recorder.max_notification_id() == head


def test_a_stale_expected_version_is_refused(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    case = application(runtime)
    with pytest.raises(VersionMismatch):
        services.cases.close_case(
            CloseCase(
                case_id=case.id, reason_code="death", provenance=approver(), expected_version=7
            )
        )
    assert ledger.get_case(case.id).version == 1


def test_two_writers_of_the_same_version_one_wins(runtime: Runtime, database_url: str) -> None:
    """Optimistic concurrency: two ledgers load version 1 and both try to close."""
    case = application(runtime)
    other = Runtime.open(runtime.settings, init=False)  # another process of the deployment
    try:
        mine, theirs = runtime.ledger.get_case(case.id), other.ledger.get_case(case.id)
        mine.close(reason_code="death", provenance=approver())
        theirs.close(reason_code="voluntary", provenance=approver())
        runtime.ledger.save(mine)
        with pytest.raises(RecordConflictError):
            other.ledger.save(theirs)
    finally:
        other.close()
    assert runtime.ledger.get_case(case.id).closure_reason.value == "death"


def _init(url: str, barrier: "multiprocessing.synchronize.Barrier") -> None:
    barrier.wait()
    init_schema(url, ALL_PROJECTIONS)


def test_processes_starting_together_do_not_race_on_the_schema(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_init, args=(database_url, barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT schemaname || '.' || tablename FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        }
    assert {
        "public.relief_events",
        "relief.projections",
        "relief.relay_state",
        "rm_caseload_g1.caseload",
    } <= tables


def test_concurrent_opens_get_distinct_increasing_positions(runtime: Runtime) -> None:
    errors: list[BaseException] = []

    def open_some() -> None:
        try:
            for _ in range(10):
                application(runtime, programme="temporary")
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=open_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    notifications = runtime.ledger.recorder.select_notifications(
        start=register_head(runtime.database_url) + 1, limit=1000
    )
    ids = [n.id for n in notifications]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert sum(n.topic.endswith("ApplicationReceived") for n in notifications) == 40


def test_a_generation_built_before_table_and_moment_marks_gets_them_at_its_content_position(
    runtime: Runtime,
) -> None:
    """Upgrading a generation built without per-table or per-moment marks marks every one of
    its tables, and every moment, at the content position its answers' tags followed, so no
    tag goes back to an older one; the per-day marks the moment marks replace are dropped."""
    approve(runtime, application(runtime))
    for projection in ALL_PROJECTIONS:
        runtime.projection_runner(projection).catch_up()
    with psycopg.connect(runtime.settings.database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE rm_caseload_g1._table_marks")
        conn.execute("DROP TABLE rm_caseload_g1._moment_marks")
        conn.execute(
            "CREATE TABLE rm_caseload_g1._day_marks (recorded_on date PRIMARY KEY,"
            " content_position bigint NOT NULL)"
        )
        (content,) = conn.execute(
            "SELECT content_position FROM rm_caseload_g1._tracking"
        ).fetchone() or (None,)
    assert content is not None and content > 0
    init_schema(runtime.settings.database_url, ALL_PROJECTIONS)
    with psycopg.connect(runtime.settings.database_url) as conn:
        marks = dict(
            conn.execute("SELECT relname, content_position FROM rm_caseload_g1._table_marks")
        )
        moments = conn.execute(
            "SELECT recorded_by::text, content_position FROM rm_caseload_g1._moment_marks"
        ).fetchall()
        day_marks = conn.execute("SELECT to_regclass('rm_caseload_g1._day_marks')").fetchone()
    assert set(marks) >= {"caseload", "caseload_rollup", "case_index"}
    assert set(marks.values()) == {content}
    assert moments == [("-infinity", content)]
    assert day_marks == (None,)


def recorded_on(*days: dt.date) -> list[RecordedEvent]:
    """Events recorded at noon (business time) on ``days``: all ``advance_tracking`` reads of
    the events a batch applied is when they were recorded."""
    return recorded_at(*(at_noon(day) for day in days))


def recorded_at(*moments: dt.datetime) -> list[RecordedEvent]:
    return [
        RecordedEvent(0, uuid.uuid4(), 1, "t", SimpleNamespace(timestamp=moment))
        for moment in moments
    ]


def at_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12, 0, 30), BUSINESS_TZ)


def test_moment_marks_tell_the_minutes_of_one_day_apart(runtime: Runtime) -> None:
    """An answer at 10:00 follows a batch of events recorded at 10:00:40, and not one of
    events recorded at 10:05 the same day (a month-end answer asked in the morning of the
    first is kept while that morning's commands pass)."""
    approve(runtime, application(runtime))
    runtime.projection_runner(CaseloadProjection).catch_up()
    day = dt.date(2026, 8, 31)
    ten, five_past = (
        dt.datetime.combine(day, t, BUSINESS_TZ) for t in (dt.time(10), dt.time(10, 5))
    )
    with psycopg.connect(runtime.settings.database_url) as conn:
        conn.execute("SET search_path TO rm_caseload_g1")
        (content,) = conn.execute("SELECT content_position FROM _tracking").fetchone() or (0,)

        def mark_at(moment: dt.datetime) -> int:
            row = conn.execute(
                "SELECT content_position FROM _moment_marks WHERE recorded_by <= %s"
                " ORDER BY recorded_by DESC LIMIT 1",
                (minute_of(moment),),
            ).fetchone()
            return int(row[0]) if row else 0

        with conn.transaction():
            conn.execute("UPDATE caseload_rollup SET households = households")
            advance_tracking(conn, content + 3, recorded_at(ten + dt.timedelta(seconds=40)))
        assert mark_at(ten) == content + 3
        with conn.transaction():
            conn.execute("UPDATE caseload_rollup SET households = households")
            advance_tracking(conn, content + 6, recorded_at(five_past))
        assert (mark_at(ten), mark_at(five_past)) == (content + 3, content + 6)
        assert mark_at(five_past - dt.timedelta(microseconds=1)) == content + 3


def test_a_batch_that_wrote_no_row_leaves_the_content_position_and_every_mark(
    runtime: Runtime,
) -> None:
    """``advance_tracking``: a batch of events the projection reads moves its content
    position (what answers' tags follow) only when it wrote rows, marks the tables it wrote
    to at that position, and the minute of its earliest event (dropping the marks of later
    minutes: no answer at a moment from that minute on is older than this batch)."""
    approve(runtime, application(runtime))
    runtime.projection_runner(CaseloadProjection).catch_up()

    def marks(conn: psycopg.Connection) -> tuple[int, dict[str, int], list[tuple[Any, ...]]]:
        (content,) = conn.execute("SELECT content_position FROM _tracking").fetchone() or (0,)
        tables = dict(conn.execute("SELECT relname, content_position FROM _table_marks"))
        moments = conn.execute("SELECT * FROM _moment_marks ORDER BY recorded_by").fetchall()
        return content, tables, [(business_date(m), p) for m, p in moments]

    may, june, july = dt.date(2026, 5, 31), dt.date(2026, 6, 30), dt.date(2026, 7, 31)
    with psycopg.connect(runtime.settings.database_url) as conn:
        conn.execute("SET search_path TO rm_caseload_g1")
        before = marks(conn)
        with conn.transaction():
            advance_tracking(conn, before[0] + 5, recorded_on(may))  # events read, none written
        assert marks(conn) == before
        assert conn.execute("SELECT position FROM _tracking").fetchone() == (before[0] + 5,)
        with conn.transaction():
            conn.execute("UPDATE caseload SET households = households WHERE false")  # no row
            conn.execute("UPDATE caseload_rollup SET households = households")
            advance_tracking(conn, before[0] + 9, recorded_on(july, june))
        content, tables, days = marks(conn)
        assert content == before[0] + 9 and tables["caseload_rollup"] == content
        assert tables["caseload"] == before[1]["caseload"] < content
        assert days[-1] == (june, content)
        with conn.transaction():
            conn.execute("UPDATE caseload_rollup SET households = households")
            advance_tracking(conn, before[0] + 12, recorded_on(july))
        assert marks(conn)[2][-2:] == [(june, before[0] + 9), (july, before[0] + 12)]
        with conn.transaction():  # a batch holding an event recorded earlier than those
            conn.execute("UPDATE caseload_rollup SET households = households")
            advance_tracking(conn, before[0] + 15, recorded_on(july, may))
        assert marks(conn)[2][-1] == (may, before[0] + 15)
        assert all(day < may for day, _ in marks(conn)[2][:-1])
        # A second writer behind the first (a rebuild's trailing stage): no mark moves back,
        # and the marks still rise with their days.
        with conn.transaction():
            conn.execute("UPDATE caseload_rollup SET households = households")
            mark_batch(conn, before[0] + 13, recorded_on(july))
            mark_batch(conn, before[0] + 14, recorded_on(june))
        content, tables, days = marks(conn)
        assert (content, tables["caseload_rollup"]) == (before[0] + 15, before[0] + 15)
        assert days[-2:] == [(may, before[0] + 15), (june, before[0] + 15)]
        with conn.transaction():
            conn.execute("UPDATE caseload_rollup SET households = households")
            advance_tracking(conn, before[0] + 20, recorded_on(july))
            mark_batch(conn, before[0] + 18, recorded_on(june))
        assert marks(conn)[2][-3:] == [
            (may, before[0] + 15),
            (june, before[0] + 18),
            (july, before[0] + 20),
        ]


def test_several_events_saved_together_get_their_positions_in_order(runtime: Runtime) -> None:
    """The recorder's insert (four binary arrays) returns each stored event's position in the
    order given, and stores its bytes as they were."""
    ledger = runtime.ledger
    cases = [application(runtime, "440103") for _ in range(2)]
    loaded = [ledger.get_case(case.id) for case in cases]
    for case in loaded:
        case.close(reason_code="voluntary", provenance=approver("440103"))
    recordings = ledger.save(*loaded)
    positions = [r.notification.id for r in recordings]
    assert positions == sorted(positions) and len(set(positions)) == 2
    stored = ledger.recorder.select_notifications(start=positions[0], limit=2)
    assert [(n.id, n.originator_id, n.originator_version) for n in stored] == [
        (p, case.id, 2) for p, case in zip(positions, cases, strict=True)
    ]
    assert [ledger.mapper.to_domain_event(n).reason_code for n in stored] == [
        "voluntary",
        "voluntary",
    ]


def test_a_batch_marks_the_counties_it_wrote_in_scoped_tables(runtime: Runtime) -> None:
    """``Projection.scoped``: each write to a scoped table notes the counties of the rows it
    inserted, changed (before and after) or deleted, and the batch's marks move those
    counties' scope marks to its position, no other county's, and leave nothing noted."""
    approve(runtime, application(runtime))
    runtime.projection_runner(CaseloadProjection).catch_up()
    with psycopg.connect(runtime.settings.database_url) as conn:
        conn.execute("SET search_path TO rm_caseload_g1")

        def scope_marks() -> dict[str, int]:
            return dict(
                conn.execute(
                    "SELECT scope, content_position FROM _scope_marks"
                    " WHERE relname = 'caseload_rollup'"
                )
            )

        (content,) = conn.execute("SELECT content_position FROM _tracking").fetchone() or (0,)
        before = scope_marks()
        assert before and set(before.values()) <= set(range(1, content + 1))
        fake = {"level": "village", "programme": "dibao", "status": "approved"}
        with conn.transaction():
            conn.execute(
                "INSERT INTO caseload_rollup (level, division, programme, status, cases,"
                " households) VALUES (%(level)s, '440999001001', %(programme)s, %(status)s, 1, 1)",
                fake,
            )
            advance_tracking(conn, content + 4, recorded_at(dt.datetime.now(dt.UTC)))
        assert scope_marks() == {**before, "440999": content + 4}
        with conn.transaction():  # moved to another county: both marked
            conn.execute(
                "UPDATE caseload_rollup SET division = '440998001001'"
                " WHERE division = '440999001001'"
            )
            advance_tracking(conn, content + 6, recorded_at(dt.datetime.now(dt.UTC)))
        assert scope_marks() == {**before, "440999": content + 6, "440998": content + 6}
        with conn.transaction():  # removed; and a second writer behind: no mark goes back
            conn.execute("DELETE FROM caseload_rollup WHERE division = '440998001001'")
            advance_tracking(conn, content + 9, recorded_at(dt.datetime.now(dt.UTC)))
            conn.execute("UPDATE caseload_rollup SET cases = cases WHERE division = '44'")
            mark_batch(conn, content + 7, recorded_at(dt.datetime.now(dt.UTC)))
        got = scope_marks()
        assert got["440998"] == content + 9 and got["44"] == content + 7
        assert {k: v for k, v in got.items() if k not in ("440998", "44")} == {
            **{k: v for k, v in before.items() if k != "44"},
            "440999": content + 6,
        }
        assert conn.execute("SELECT count(*) FROM _scope_touched").fetchone() == (0,)


def test_a_generation_built_before_scope_marks_gets_them_at_its_table_marks(
    runtime: Runtime,
) -> None:
    """Upgrading a generation built without scope marks marks every county of each scoped
    table at that table's mark (no answer's tag goes back) and puts the triggers on, so the
    next batch marks the counties it writes."""
    approve(runtime, application(runtime))
    runtime.projection_runner(CaseloadProjection).catch_up()
    with psycopg.connect(runtime.settings.database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE rm_caseload_g1._scope_marks, rm_caseload_g1._scope_touched")
        for event in ("insert", "update", "delete"):
            conn.execute(
                f"DROP TRIGGER scope_marks_{event} ON rm_caseload_g1.caseload_rollup;"
                f" DROP FUNCTION rm_caseload_g1._scope_caseload_rollup_{event}"
            )
        (mark,) = conn.execute(
            "SELECT content_position FROM rm_caseload_g1._table_marks"
            " WHERE relname = 'caseload_rollup'"
        ).fetchone() or (None,)
    init_schema(runtime.settings.database_url, ALL_PROJECTIONS)
    with psycopg.connect(runtime.settings.database_url) as conn:
        conn.execute("SET search_path TO rm_caseload_g1")
        assert conn.execute(
            "SELECT relname, scope, content_position FROM _scope_marks"
        ).fetchall() == [("caseload_rollup", "*", mark)]
        with conn.transaction():
            conn.execute("UPDATE caseload_rollup SET cases = cases WHERE division = '44'")
            advance_tracking(conn, 10_000, recorded_at(dt.datetime.now(dt.UTC)))
        assert dict(conn.execute("SELECT scope, content_position FROM _scope_marks")) == {
            "*": mark,
            "44": 10_000,
        }
