"""The staffing requirement view over the real store: band edges, changes, history, policy."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from eventsourcing.utils import get_topic
from psycopg import sql
from psycopg.types.json import Jsonb

from domain.case import ReliefCase
from domain.commands.cases import CloseCase
from domain.commands.purchasing import (
    AssignStaff,
    AwardContract,
    HireStaff,
    RegisterContractor,
    TerminateContract,
)
from domain.provenance import Actor, Provenance, Role
from domain.staffing import LoadOutcome, StaffingPolicy
from infra.policies import DEFAULT_POLICY_FILE, read_policy_file
from infra.projection_runner import BatchApplier, rebuild
from infra.runtime import Runtime
from infra.schema import generation_schema
from infra.settings import Settings
from projections.base import RecordedEvent
from projections.policies import PoliciesProjection
from projections.staffing import StaffingProjection
from projections.staffing_view import (
    current_staffing,
    division_row,
    divisions_at,
    load_policies,
    staffing_at,
)
from tests.factories import BY_CLERK, BY_OFFICER, approver, credit_code
from tests.scenario import application, approve

pytestmark = pytest.mark.integration

_positions = itertools.count(1)


def approved_households(village: str, count: int, at: dt.datetime) -> list[RecordedEvent]:
    """``count`` households with one approved case each, as the events the domain records."""
    events = []
    for _ in range(count):
        case_id = uuid.uuid4()
        received = ReliefCase.ApplicationReceived(
            originator_id=case_id,
            originator_version=1,
            timestamp=at,
            originator_topic=get_topic(ReliefCase),
            programme="dibao",
            applicant_id="-",
            household_id=uuid.uuid4(),
            registered_division=village,
            window_division=village[:9],
            received_county=village[:6],
            jurisdiction_county=village[:6],
            cross_region=False,
            provenance=BY_CLERK,
        )
        approved = ReliefCase.Approved(
            originator_id=case_id,
            originator_version=5,
            timestamp=at,
            programme="dibao",
            monthly_amount=Decimal(900),
            start_date=at.date(),
            reasons="r",
            provenance=approver(village[:6]),
        )
        for event in (received, approved):
            events.append(
                RecordedEvent(
                    next(_positions),
                    case_id,
                    event.originator_version,
                    get_topic(type(event)),
                    event,
                )
            )
    return events


def catch_up(runtime: Runtime) -> None:
    runtime.projection_runner(StaffingProjection).catch_up()


def rows_by_code(
    runtime: Runtime,
    at: dt.datetime | None = None,
    division: str | None = None,
    known_at: dt.datetime | None = None,
) -> dict[str, tuple[int, int, int, int, int]]:
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        moment = at or runtime.services.clock.now()
        policies = load_policies(cursor, known_at) if known_at else None
        snapshot = staffing_at(cursor, moment, division=division, policies=policies)
        # The one-statement counties and townships say the same as the reference, then and now.
        _, then, _ = divisions_at(cursor, moment, division=division, limit=1000, policies=policies)
        assert then == [division_row(d) for d in snapshot.divisions]
        if at is None:  # now: the rows the projection keeps say the same as the intervals
            _, items, _ = current_staffing(
                cursor, moment, division=division, limit=1000, policies=policies
            )
            assert items == [division_row(d) for d in snapshot.divisions]
    return {
        d.division: (d.households, d.minimum, d.government_staff, d.contractor_staff, d.shortfall)
        for d in snapshot.divisions
    }


def test_the_band_table_at_every_edge_through_the_projection(runtime: Runtime) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    counties = {
        "441201": 2999,
        "441202": 3000,
        "441203": 3001,
        "441204": 5000,
        "441205": 8000,
        "441206": 8001,
    }
    townships = {"441301001": 299, "441301002": 300, "441301003": 600, "441301004": 601}
    events = []
    for code, count in {**counties, **townships}.items():
        village = code + "001001" if len(code) == 6 else code + "001"
        events += approved_households(village, count, at)
    schema = generation_schema("staffing", 1)
    with runtime.pool.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        BatchApplier(StaffingProjection()).apply(conn, events)
    rows = rows_by_code(runtime, division="441")
    assert {code: rows[code][:2] for code in counties} == {
        "441201": (2999, 2),
        "441202": (3000, 4),
        "441203": (3001, 4),
        "441204": (5000, 6),
        "441205": (8000, 10),
        "441206": (8001, 10),
    }
    assert {code: rows[code][:2] for code in townships} == {
        "441301001": (299, 2),
        "441301002": (300, 4),
        "441301003": (600, 6),
        "441301004": (601, 6),
    }
    assert rows["441206"][4] == 10  # no staff: the whole minimum is short


def test_the_view_follows_staff_moves_contract_ends_and_cases(runtime: Runtime) -> None:
    services = runtime.services
    cases = [application(runtime, "440103") for _ in range(3)]
    for case in cases[:2]:
        approve(runtime, case)
    clerk = services.purchasing.hire_staff(
        HireStaff(name="Li", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER)
    )
    services.purchasing.assign_staff(
        AssignStaff(staff_id=clerk.id, division="440103001", provenance=BY_OFFICER)
    )
    contractor = services.purchasing.register_contractor(
        RegisterContractor(
            name="Care",
            contractor_type="social_organisation",
            credit_code=credit_code(),
            institution_class=None,
            provenance=BY_OFFICER,
        )
    )
    today = runtime.services.clock.today()
    contract = services.purchasing.award_contract(
        AwardContract(
            contractor_id=contractor.id,
            purchaser="440103",
            work_items=("household_investigation",),
            service_area=("440103",),
            start=today - dt.timedelta(days=30),
            end=today + dt.timedelta(days=300),
            value="1000",
            funding_source="relief_work_funds",
            provenance=BY_OFFICER,
        )
    )
    hired = services.purchasing.hire_staff(
        HireStaff(
            name="Wang", kind="handling_staff", contract_id=contract.id, provenance=BY_OFFICER
        )
    )
    services.purchasing.assign_staff(
        AssignStaff(staff_id=hired.id, division="440103001", provenance=BY_OFFICER)
    )
    coordinator = services.purchasing.hire_staff(
        HireStaff(
            name="Zhao",
            kind="village_coordinator",
            government_unit="440103001",
            provenance=BY_OFFICER,
        )
    )
    services.purchasing.assign_staff(
        AssignStaff(staff_id=coordinator.id, division="440103001001", provenance=BY_OFFICER)
    )
    catch_up(runtime)
    rows = rows_by_code(runtime)
    # county: 2 households; the officer and the approver who decided the cases (staff records
    # of the county, as every decision-maker is) are its staff, so it is not short
    assert rows["440103"] == (2, 2, 2, 0, 0)
    assert rows["440103001"] == (2, 2, 1, 1, 0)  # township: one of each, not short
    before_moves = runtime.services.clock.now()

    services.purchasing.assign_staff(
        AssignStaff(staff_id=clerk.id, division="440103002", provenance=BY_OFFICER)
    )  # moves away
    catch_up(runtime)
    assert rows_by_code(runtime)["440103001"] == (2, 2, 0, 1, 1)
    assert rows_by_code(runtime)["440103002"] == (0, 2, 1, 0, 1)

    services.purchasing.terminate_contract(
        TerminateContract(
            contract_id=contract.id,
            effective_at=runtime.services.clock.now(),
            basis="contract",
            reason="ended early",
            provenance=BY_OFFICER,
        )
    )
    catch_up(runtime)
    assert rows_by_code(runtime)["440103001"] == (2, 2, 0, 0, 2)  # contract staff stop counting

    services.cases.close_case(
        CloseCase(case_id=cases[0].id, reason_code="moved_away", provenance=approver())
    )
    catch_up(runtime)
    assert rows_by_code(runtime)["440103001"][0] == 1
    # The view as it stood earlier is answered from the history, unchanged by what followed.
    assert rows_by_code(runtime, before_moves)["440103001"] == (2, 2, 1, 1, 0)

    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        villages = {
            v.division: v for v in staffing_at(cursor, runtime.services.clock.now()).villages
        }
    assert villages["440103001001"].coordinators == 1
    assert villages["440103001001"].status == "ok"


def test_past_views_equal_what_the_live_view_showed_then(runtime: Runtime) -> None:
    services = runtime.services
    seen: list[tuple[dt.datetime, dict]] = []
    for round_ in range(4):
        case = application(runtime, "440104")
        approve(runtime, case)
        staff = services.purchasing.hire_staff(
            HireStaff(
                name=f"S{round_}",
                kind="handling_staff",
                government_unit="440104",
                provenance=BY_OFFICER,
            )
        )
        services.purchasing.assign_staff(
            AssignStaff(staff_id=staff.id, division="440104", provenance=BY_OFFICER)
        )
        if round_ == 2:
            services.cases.close_case(
                CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver("440104"))
            )
        catch_up(runtime)
        moment = runtime.services.clock.now()
        seen.append((moment, rows_by_code(runtime, moment)))
        time.sleep(0.01)
    for moment, live in seen:
        assert rows_by_code(runtime, moment) == live


PROVINCE = Provenance(Actor("province-approver", Role.APPROVER, "44"))


def recorded_versions(runtime: Runtime) -> list[tuple]:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "SELECT effective_from, revision, corrects, reason, loaded_by, recorded_at, position"
            " FROM read_models.staffing_policies ORDER BY effective_from, revision"
        ).fetchall()


def test_a_new_band_table_re_evaluates_the_view_without_replay(runtime: Runtime) -> None:
    services = runtime.services
    application(runtime, "440105")
    staff = services.purchasing.hire_staff(
        HireStaff(name="S", kind="handling_staff", government_unit="440105", provenance=BY_OFFICER)
    )
    services.purchasing.assign_staff(
        AssignStaff(staff_id=staff.id, division="440105", provenance=BY_OFFICER)
    )
    catch_up(runtime)
    assert rows_by_code(runtime)["440105"][1:] == (2, 1, 0, 1)
    position = runtime.head_position()
    stricter = json.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    stricter.update(
        name="stricter",
        effective_from=runtime.services.clock.today().isoformat(),
        county=[{"households_from": 0, "minimum": 5}],
        source="test notice",
    )
    loaded = runtime.load_policy(stricter, PROVINCE)
    assert loaded.outcome is LoadOutcome.ADOPTED
    assert rows_by_code(runtime)["440105"][1:] == (5, 1, 0, 4)
    yesterday = runtime.services.clock.now() - dt.timedelta(days=1)
    assert rows_by_code(runtime, yesterday, "440105")["440105"][1] == 2  # old table then
    # one event, the adoption; the staffing rows were not rebuilt or replayed for it
    assert runtime.head_position() == position + 1
    assert runtime.projection_runner(StaffingProjection).catch_up() == 1  # passed over only


def test_a_correction_is_used_from_then_on_and_what_was_known_before_stays_answerable(
    runtime: Runtime,
) -> None:
    staff = runtime.services.purchasing.hire_staff(
        HireStaff(name="S", kind="handling_staff", government_unit="440105", provenance=BY_OFFICER)
    )
    runtime.services.purchasing.assign_staff(
        AssignStaff(staff_id=staff.id, division="440105", provenance=BY_OFFICER)
    )
    catch_up(runtime)
    default = recorded_versions(runtime)
    assert [(v[0].isoformat(), v[1], v[4]) for v in default] == [
        ("2019-01-04", 1, "relief-first-start")
    ]
    today = runtime.services.clock.today()
    table = json.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    table.update(
        name="2026 bands",
        effective_from=today.isoformat(),
        county=[{"households_from": 0, "minimum": 5}],
        source="notice of 2026",
    )
    assert runtime.load_policy(table, PROVINCE).outcome is LoadOutcome.ADOPTED
    adopted_at = recorded_versions(runtime)[-1][5]
    assert rows_by_code(runtime)["440105"][1] == 5
    corrected_table = {
        **table,
        "county": [{"households_from": 0, "minimum": 7}],
        "reason": "the county minimum was misprinted",
    }
    corrected = runtime.load_policy(corrected_table, PROVINCE)
    assert corrected.outcome is LoadOutcome.CORRECTED
    assert (corrected.version.revision, corrected.version.corrects) == (2, 1)
    head = runtime.head_position()
    # the same table again: nothing recorded, the same answer
    assert runtime.load_policy(corrected_table, PROVINCE).outcome is LoadOutcome.UNCHANGED
    assert runtime.head_position() == head
    versions = recorded_versions(runtime)
    assert [(v[1], v[2], v[3]) for v in versions[1:]] == [
        (1, None, None),
        (2, 1, "the county minimum was misprinted"),
    ]
    corrected_at = versions[-1][5]
    now = runtime.services.clock.now()
    # at= now uses the corrected table; as the ledger knew it before the correction, the old
    assert rows_by_code(runtime, now, "440105")["440105"][1] == 7
    assert rows_by_code(runtime)["440105"][1] == 7
    assert rows_by_code(runtime, now, "440105", known_at=adopted_at)["440105"][1] == 5
    assert rows_by_code(runtime, now, "440105", known_at=corrected_at)["440105"][1] == 7
    before_adoption = adopted_at - dt.timedelta(microseconds=1)
    assert rows_by_code(runtime, now, "440105", known_at=before_adoption)["440105"][1] == 2
    yesterday = now - dt.timedelta(days=1)
    assert rows_by_code(runtime, yesterday, "440105")["440105"][1] == 2  # not in force yet
    # the read model rebuilt from the log equals the one kept live
    live = recorded_versions(runtime)
    generation = rebuild(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        PoliciesProjection,
        batch_size=1,
    )
    assert generation == 2 and recorded_versions(runtime) == live


def test_the_cli_loads_a_table_through_the_same_service(
    runtime: Runtime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    monkeypatch.setenv("RELIEF_DATABASE_URL", runtime.database_url)
    monkeypatch.setenv("RELIEF_DATA_DIR", str(runtime.settings.data_dir))
    table = json.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    table.update(name="2027 bands", effective_from="2027-01-01", source="notice of 2027")
    file = tmp_path / "bands-2027.json"
    file.write_text(json.dumps(table), encoding="utf-8")
    load = ["policy", "load", str(file), "--actor", "province-1"]

    assert main([*load, "--role", "intake_clerk"]) == 3
    assert "refused (actor.role)" in capsys.readouterr().err
    assert main([*load, "--role", "approver"]) == 0
    assert "from 2027-01-01: adopted" in capsys.readouterr().out
    assert main([*load, "--role", "supervisor"]) == 0
    assert "unchanged: revision 1 is this table already" in capsys.readouterr().out
    table["township"] = [{"households_from": 0, "minimum": 3}]
    file.write_text(json.dumps(table), encoding="utf-8")
    assert main([*load, "--role", "approver"]) == 3  # a correction says why
    assert "refused (reason)" in capsys.readouterr().err
    assert main([*load, "--role", "approver", "--reason", "township misprint"]) == 0
    assert "corrected (revision 2 corrects revision 1)" in capsys.readouterr().out
    file.write_text("{not json", encoding="utf-8")
    assert main([*load, "--role", "approver"]) == 2
    assert "not JSON" in capsys.readouterr().err
    versions = recorded_versions(runtime)
    assert [(v[0].isoformat(), v[1], v[2], v[3]) for v in versions[1:]] == [
        ("2027-01-01", 1, None, None),
        ("2027-01-01", 2, 1, "township misprint"),
    ]


def policy_events(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT topic FROM public.relief_events WHERE topic LIKE 'domain.staffing:%%'"
            " ORDER BY notification_id"
        ).fetchall()
    return [row[0].rsplit(".", 1)[-1] for row in rows]


def test_the_first_start_adopts_the_shipped_table_once_by_the_system(
    settings: Settings, empty_database_url: str
) -> None:
    settings = settings.with_(database_url=empty_database_url)
    first = Runtime.open(settings)
    try:
        assert policy_events(empty_database_url) == ["Opened", "BandTableAdopted"]
        versions = recorded_versions(first)
        assert [(v[0].isoformat(), v[1], v[4]) for v in versions] == [
            ("2019-01-04", 1, "relief-first-start")
        ]
        tables = first.services.policy.band_tables()
        assert tables is not None
        adopted = tables.history()[0]
        assert "粤民发" in adopted.source
        assert adopted.table == StaffingPolicy.parse(read_policy_file(DEFAULT_POLICY_FILE))
    finally:
        first.close()
    again = Runtime.open(settings)  # the log has band tables: nothing is written
    try:
        assert policy_events(empty_database_url) == ["Opened", "BandTableAdopted"]
        assert not again.events_beyond_register()  # reference data only: an empty ledger
    finally:
        again.close()


def test_tables_the_version_before_kept_are_adopted_with_where_they_came_from(
    settings: Settings, empty_database_url: str
) -> None:
    """A database of the version before: its upserted tables become adoptions, so its past
    answers stay as they were."""
    document = json.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    del document["source"]
    stricter = {**document, "name": "stricter", "effective_from": "2024-01-01"}
    stricter["county"] = [{"households_from": 0, "minimum": 5}]
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA relief")
        conn.execute(
            "CREATE TABLE relief.staffing_policies (effective_from date PRIMARY KEY,"
            " name text NOT NULL, document jsonb NOT NULL, loaded_by text NOT NULL,"
            " loaded_at timestamptz NOT NULL DEFAULT now())"
        )
        for table, by in ((document, "relief db init"), (stricter, "approver-1")):
            conn.execute(
                "INSERT INTO relief.staffing_policies (effective_from, name, document, loaded_by)"
                " VALUES (%s, %s, %s, %s)",
                (table["effective_from"], table["name"], Jsonb(table), by),
            )
    runtime = Runtime.open(settings.with_(database_url=empty_database_url))
    try:
        tables = runtime.services.policy.band_tables()
        assert tables is not None
        history = tables.history()
        assert [(v.effective_from.isoformat(), v.revision) for v in history] == [
            ("2019-01-04", 1),
            ("2024-01-01", 1),
        ]
        assert "relief.staffing_policies, loaded by approver-1" in history[1].source
        with runtime.pool.connection() as conn, conn.cursor() as cursor:
            policies = load_policies(cursor)
        assert [p.name for p in policies] == [document["name"], "stricter"]
    finally:
        runtime.close()
