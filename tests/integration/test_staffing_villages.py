"""The villages' rows the staffing projection keeps (``staffing_villages``, and the counts per
county and number of coordinators ``staffing_village_counts``) and the counties' and townships'
rows (``staffing_divisions``: households, government and contractor staff) against a recount
from the events, over generated histories: coordinators and handling staff hired by the bureau
and by contracts, moved,
removed (as of a past day and as of a day ahead), contracts terminated and run out, relief
cases opened and closed, the register's villages established, renamed, merged and abolished
(some never seen, some ahead of today). Built in batches of several sizes and with each
aggregate's events arriving in another order (as from Kafka partitions); and the villages now
and the counties and townships now (whole, paged, per level, the short ones) read from the
kept rows equal the reference computed from the intervals, under the band table
shipped and under another one (compared when read: no replay)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from domain.case import ReliefCase
from domain.clock import BUSINESS_TZ, business_date
from domain.contract import Contract, Terms
from domain.division import Division
from domain.staff import StaffMember
from domain.staffing import StaffingPolicy
from infra.policies import DEFAULT_POLICY_FILE
from infra.projection_runner import BatchApplier
from infra.runtime import Runtime
from infra.schema import create_generation
from projections.base import Projection, RecordedEvent
from projections.divisions import DivisionsProjection
from projections.staffing import StaffingProjection
from projections.staffing_view import (
    _village_params,
    current_staffing,
    current_summary,
    current_village_totals,
    current_villages,
    division_row,
    staffing_at,
)
from tests.factories import BY_CLERK, BY_OFFICER, approver

pytestmark = pytest.mark.integration

SHIPPED = StaffingPolicy.parse(json.loads(DEFAULT_POLICY_FILE.read_text("utf-8")))
#: Another band table: for villages two coordinators at least, more than three for review; for
#: counties and townships bands at the few households of the history.
STRICTER = StaffingPolicy.parse(
    {
        **SHIPPED.to_document(),
        "name": "stricter",
        "village": {"minimum": 2, "review_above": 3},
        "county": [
            {"households_from": 0, "minimum": 1},
            {"households_from": 4, "minimum": 3},
            {"households_from": 9, "minimum": 5},
        ],
        "township": [{"households_from": 0, "minimum": 1}, {"households_from": 2, "minimum": 3}],
    }
)


class History:
    """A generated history as the domain records it: events with positions, in log order."""

    def __init__(self, seed: int, now: dt.datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.today = business_date(now)
        self.clock = now - dt.timedelta(days=60)
        self.positions = itertools.count(1)
        self.versions: dict[uuid.UUID, int] = defaultdict(int)
        self.events: list[RecordedEvent] = []

    def tick(self) -> dt.datetime:
        self.clock += dt.timedelta(minutes=self.rng.randint(1, 90))
        assert self.clock < self.now
        return self.clock

    def record(self, event_class: type, originator: uuid.UUID, **fields: Any) -> None:
        self.versions[originator] += 1
        extra = {}
        if event_class in CREATED:  # an aggregate's first event names its class
            extra["originator_topic"] = get_topic(CREATED[event_class])
        event = event_class(
            originator_id=originator,
            originator_version=self.versions[originator],
            timestamp=self.tick(),
            **extra,
            **fields,
        )
        self.events.append(
            RecordedEvent(
                next(self.positions),
                originator,
                event.originator_version,
                get_topic(event_class),
                event,
            )
        )


CREATED: dict[type, type] = {
    Division.Established: Division,
    Contract.Awarded: Contract,
    StaffMember.Hired: StaffMember,
    ReliefCase.ApplicationReceived: ReliefCase,
}


COUNTIES = ("445301", "445302")


def generate(seed: int, now: dt.datetime) -> History:
    h = History(seed, now)
    rng = h.rng
    long_ago = dt.date(2020, 1, 1)
    villages = [
        f"{county}{t:03d}{v:03d}" for county in COUNTIES for t in (1, 2, 3) for v in (1, 2, 3, 4)
    ]
    # The register: every village (some never seen), a county and township (not villages);
    # one village established ahead of today, one abolished last week, one abolished ahead,
    # one renamed, one merged; one village the ledger sees is not in the register at all.
    divisions: dict[str, uuid.UUID] = {}
    gone = f"{COUNTIES[1]}003010"  # abolished last week, never seen
    for code in [COUNTIES[0], COUNTIES[0] + "001", *villages[:-1], gone]:
        divisions[code] = uuid.uuid4()
        h.record(
            Division.Established,
            divisions[code],
            code=code,
            name=f"村{code}",
            level=len(code),
            parent=code[:-3] if len(code) > 6 else code[:4],
            effective_from=long_ago,
            provenance=BY_OFFICER,
        )
    unregistered = villages[-1]
    ahead = f"{COUNTIES[1]}003009"
    h.record(
        Division.Established,
        uuid.uuid4(),
        code=ahead,
        name="新村",
        level=12,
        parent=ahead[:9],
        effective_from=h.today + dt.timedelta(days=10),
        provenance=BY_OFFICER,
    )
    ended = rng.sample(villages[:-1], 4)
    h.record(
        Division.Abolished,
        divisions[gone],
        effective_from=h.today - dt.timedelta(days=7),
        provenance=BY_OFFICER,
    )
    h.record(
        Division.Abolished,
        divisions[ended[0]],
        effective_from=h.today - dt.timedelta(days=7),
        provenance=BY_OFFICER,
    )
    h.record(
        Division.Abolished,
        divisions[ended[1]],
        effective_from=h.today + dt.timedelta(days=5),
        provenance=BY_OFFICER,
    )
    h.record(
        Division.Renamed,
        divisions[ended[2]],
        name="更名村",
        effective_from=h.today - dt.timedelta(days=30),
        provenance=BY_OFFICER,
    )
    h.record(
        Division.MergedInto,
        divisions[ended[3]],
        successor=villages[0],
        effective_from=h.today - dt.timedelta(days=2),
        provenance=BY_OFFICER,
    )
    # Contracts: one in force, one terminated yesterday, one whose term ran out last week.
    contracts = []
    for end, terminated in (
        (h.today + dt.timedelta(days=300), False),
        (h.today + dt.timedelta(days=300), True),
        (h.today - dt.timedelta(days=7), False),
    ):
        contract_id = uuid.uuid4()
        contracts.append((contract_id, terminated))
        h.record(
            Contract.Awarded,
            contract_id,
            contractor_id=uuid.uuid4(),
            contractor_credit_code="-",
            purchaser=COUNTIES[0],
            terms=Terms(
                work_items=("household_investigation",),
                service_area=COUNTIES,
                start=h.today - dt.timedelta(days=90),
                end=end,
                value=Decimal(1000),
            ),
            funding_source="relief_work_funds",
            awarded_on=h.today - dt.timedelta(days=90),
            provenance=BY_OFFICER,
        )
    # Coordinators, relief cases, moves and removals, interleaved.
    staff: dict[uuid.UUID, bool] = {}  # staff member -> removed
    handling: set[uuid.UUID] = set()  # the handling staff of counties and townships
    staffed = [*COUNTIES, *(county + t for county in COUNTIES for t in ("001", "002", "003"))]
    cases: dict[uuid.UUID, str] = {}  # case -> active, suspended or closed

    def hire(name: str, kind: str, divisions: Callable[[], list[str]]) -> uuid.UUID:
        """A staff member hired (paid by the county or under a contract) and assigned to one
        of ``divisions`` (asked for after the hire, as the history's order of draws wants)."""
        staff_id = uuid.uuid4()
        contract = rng.choice([None, None, *(c for c, _ in contracts)])
        h.record(
            StaffMember.Hired,
            staff_id,
            name=name,
            kind=kind,
            government_unit=None if contract else COUNTIES[0],
            contractor_id=None,
            contract_id=contract,
            person_id=None,
            provenance=BY_OFFICER,
        )
        h.record(
            StaffMember.Assigned, staff_id, division=rng.choice(divisions()), provenance=BY_OFFICER
        )
        staff[staff_id] = False
        return staff_id

    for _ in range(220):
        active_staff = [s for s, removed in staff.items() if not removed]
        if rng.random() < 0.12:  # handling staff of a county or township, paid either way
            # now and then assigned to a village, where it is not counted
            staff_id = hire(
                "经办员",
                "handling_staff",
                lambda: staffed if rng.random() < 0.9 else villages[:1],
            )
            handling.add(staff_id)
            continue
        roll = rng.random()
        if roll < 0.3 or not active_staff:
            hire(
                "协理员",
                "village_coordinator",
                lambda: villages[:-2] if rng.random() < 0.9 else [unregistered],
            )
        elif roll < 0.45:
            staff_id = rng.choice(active_staff)
            h.record(
                StaffMember.Assigned,
                staff_id,
                division=rng.choice(staffed if staff_id in handling else villages[:-1]),
                provenance=BY_OFFICER,
            )
        elif roll < 0.55:
            staff_id = rng.choice(active_staff)
            ahead_days = rng.choice([-20, -1, 0, 3, 12])
            h.record(
                StaffMember.Removed,
                staff_id,
                on=h.today + dt.timedelta(days=ahead_days),
                reason="清退",
                provenance=BY_OFFICER,
            )
            staff[staff_id] = True
        elif roll < 0.85 or not cases:
            case_id, village = uuid.uuid4(), rng.choice(villages)
            h.record(
                ReliefCase.ApplicationReceived,
                case_id,
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
            h.record(
                ReliefCase.Approved,
                case_id,
                programme="dibao",
                monthly_amount=Decimal(900),
                start_date=h.today,
                reasons="r",
                provenance=approver(village[:6]),
            )
            cases[case_id] = "active"
        else:  # a case suspended, resumed or closed
            open_cases = [c for c, state in cases.items() if state != "closed"]
            if not open_cases:
                continue
            case_id = rng.choice(open_cases)
            if cases[case_id] == "suspended":
                h.record(ReliefCase.Resumed, case_id, reason="r", provenance=approver())
                cases[case_id] = "active"
            elif rng.random() < 0.5:
                h.record(ReliefCase.Suspended, case_id, reason="r", provenance=approver())
                cases[case_id] = "suspended"
            else:
                h.record(
                    ReliefCase.Closed, case_id, reason_code="moved_away", provenance=approver()
                )
                cases[case_id] = "closed"
    for contract_id, terminated in contracts:
        if terminated:
            h.record(
                Contract.Terminated,
                contract_id,
                effective_at=now - dt.timedelta(days=1),
                basis="contract",
                reason="ended early",
                provenance=BY_OFFICER,
            )
    return h


def recount(
    events: list[RecordedEvent],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The villages' rows, the counts per county and coordinators, and the counties' and
    townships' rows, from the events alone: households with an active case, open assignments
    of coordinators per village and of other staff per county and township (by who pays them),
    divisions seen, the register's periods."""
    kinds: dict[uuid.UUID, str] = {}
    employers: dict[uuid.UUID, str] = {}
    assignment: dict[uuid.UUID, str] = {}
    homes: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    active: set[uuid.UUID] = set()
    seen: set[str] = set()
    register: dict[str, list[Any]] = {}  # code -> [division id, from, to]
    code_of: dict[uuid.UUID, str] = {}
    for recorded in events:
        e, who = recorded.event, recorded.originator_id
        if isinstance(e, StaffMember.Hired):
            kinds[who] = e.kind
            employers[who] = "contractor" if e.contract_id else "government"
        elif isinstance(e, StaffMember.Assigned):
            assignment[who] = e.division
            seen.add(e.division)
        elif isinstance(e, StaffMember.Removed):
            assignment.pop(who, None)
        elif isinstance(e, ReliefCase.ApplicationReceived):
            homes[who] = (e.household_id, e.registered_division)
        elif isinstance(e, (ReliefCase.Approved, ReliefCase.Resumed)):
            seen.add(homes[who][1])
            active.add(who)
        elif isinstance(e, (ReliefCase.Suspended, ReliefCase.Closed)):
            active.discard(who)
        elif isinstance(e, Division.Established) and e.level == 12:
            register[e.code] = [who, e.effective_from, None]
            code_of[who] = e.code
        elif isinstance(e, (Division.Abolished, Division.MergedInto)) and who in code_of:
            register[code_of[who]][2] = e.effective_from
    coordinators: dict[str, int] = defaultdict(int)
    for staff_id, village in assignment.items():
        if kinds[staff_id] == "village_coordinator" and len(village) == 12:
            coordinators[village] += 1
    households: dict[str, set[uuid.UUID]] = defaultdict(set)
    for case_id in active:
        households[homes[case_id][1]].add(homes[case_id][0])
    rows = []
    for code in sorted(set(register) | {v for v in seen if len(v) == 12}):
        listed = register.get(code, [None, None, None])
        rows.append((code, len(households[code]), coordinators[code], code in seen, *listed))
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        counts[(row[0][:6], row[2])] += 1
    staff: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for staff_id, division in assignment.items():
        if kinds[staff_id] != "village_coordinator" and len(division) in (6, 9):
            staff[division][employers[staff_id]] += 1
    areas: dict[str, set[uuid.UUID]] = defaultdict(set)
    for case_id in active:
        household, village = homes[case_id]
        for width in (6, 9):
            areas[village[:width]].add(household)
    divisions = [
        (
            code,
            "county" if len(code) == 6 else "township",
            len(areas[code]),
            staff[code]["government"],
            staff[code]["contractor"],
        )
        for code in sorted({code[:w] for code in seen for w in (6, 9) if len(code) >= w})
    ]
    return (
        rows,
        sorted((county, n, villages) for (county, n), villages in counts.items()),
        divisions,
    )


def per_aggregate(events: list[RecordedEvent], seed: int) -> list[RecordedEvent]:
    """The events as partitions might deliver them: each aggregate's in order, the aggregates'
    interleaved at random."""
    queues: dict[uuid.UUID, list[RecordedEvent]] = defaultdict(list)
    for recorded in events:
        queues[recorded.originator_id].append(recorded)
    rng, ordered = random.Random(seed), []
    pending = [list(q) for q in queues.values()]
    while pending:
        queue = rng.choice(pending)
        ordered.append(queue.pop(0))
        if not queue:
            pending.remove(queue)
    return ordered


def chunks(events: list[RecordedEvent], size: int) -> Iterator[list[RecordedEvent]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def build(
    runtime: Runtime, projection: Projection, schema: str, batches: Iterator[list[RecordedEvent]]
) -> None:
    with runtime.pool.connection() as conn:
        with conn.transaction():
            create_generation(conn, type(projection), schema, replace=True)
        for batch in batches:
            with conn.transaction():
                conn.execute(f"SET LOCAL search_path TO {schema}")
                BatchApplier(projection).apply(conn, batch)


def table(runtime: Runtime, schema: str, name: str) -> list[tuple[Any, ...]]:
    with runtime.pool.connection() as conn:
        return conn.execute(f"SELECT * FROM {schema}.{name} ORDER BY 1, 2").fetchall()


def serve(runtime: Runtime, projection: type[Projection], schema: str) -> None:
    with runtime.pool.connection() as conn, conn.transaction():
        for view in projection.views:
            conn.execute(
                f"CREATE OR REPLACE VIEW read_models.{view} AS SELECT * FROM {schema}.{view}"
            )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_villages_equal_a_recount_and_the_reference(runtime: Runtime, seed: int) -> None:
    now = dt.datetime.now(BUSINESS_TZ).replace(microsecond=0)
    history = generate(seed, now)
    events = history.events
    # The history exercises what is compared.
    assert any(isinstance(r.event, StaffMember.Removed) for r in events)
    assert any(
        isinstance(r.event, StaffMember.Removed) and r.event.on > history.today for r in events
    )
    rows, counts, divisions = recount(events)
    assert any(row[3] and row[4] for row in divisions), "no county or township staff of both"
    assert any(not row[3] and row[2] == 0 for row in rows), "no village only in the register"
    assert any(row[3] and row[4] is None for row in rows), "no village outside the register"
    assert any(row[1] for row in rows) and any(row[2] for row in rows)
    kept = {}
    for name, batches in (
        ("b1", chunks(events, 1)),
        ("b7", chunks(events, 7)),
        ("all", chunks(events, len(events))),
        ("shuffled", chunks(per_aggregate(events, seed), 11)),
    ):
        schema = f"rm_staffing_v{seed}_{name}"
        build(runtime, StaffingProjection(), schema, batches)
        kept[name] = (
            table(runtime, schema, "staffing_villages"),
            table(runtime, schema, "staffing_village_counts"),
            table(runtime, schema, "staffing_divisions"),
        )
        assert kept[name] == (rows, counts, divisions), name
    # The villages now, read from the kept rows, equal the reference from the intervals.
    serve(runtime, StaffingProjection, f"rm_staffing_v{seed}_b7")
    register = f"rm_divisions_v{seed}"
    topics = set(DivisionsProjection.topics())  # the feed gives it the register's events
    register_events = [r for r in events if r.topic in topics]
    build(runtime, DivisionsProjection(), register, chunks(register_events, 50))
    serve(runtime, DivisionsProjection, register)
    statuses: dict[str, int] = defaultdict(int)
    shortfalls: set[bool] = set()
    corrected = 0  # divisions whose staff now differ from the open assignments kept
    kept_staff = {row[0]: row[3] + row[4] for row in divisions}
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        for policy, division in itertools.product(
            (SHIPPED, STRICTER),
            (None, "44", COUNTIES[0], COUNTIES[1] + "003", rows[0][0], COUNTIES[1] + "002099"),
        ):
            snapshot = staffing_at(cursor, now, division=division, policies=[policy])
            for village in snapshot.villages:
                statuses[village.status] += 1
            for status in (None, "under_staffed", "ok", "review"):
                wanted = [
                    vars(v) for v in snapshot.villages if status is None or v.status == status
                ]
                got = current_villages(
                    cursor, now, division=division, status=status, limit=1000, policies=[policy]
                )
                assert got == (policy.name, wanted, len(wanted)), (policy.name, division, status)
                _, page, total = current_villages(
                    cursor,
                    now,
                    division=division,
                    status=status,
                    limit=2,
                    offset=3,
                    policies=[policy],
                )
                assert (page, total) == (wanted[3:5], len(wanted))
            # The counties and townships now, from the kept rows: whole, paged, past the
            # end, per level, the short ones.
            expected = [division_row(d) for d in snapshot.divisions]
            shortfalls.update(bool(r["shortfall"]) for r in expected)
            corrected += sum(
                r["staff"] != kept_staff.get(r["division"], r["staff"]) for r in expected
            )
            got_divisions = current_staffing(
                cursor, now, division=division, limit=1000, policies=[policy]
            )
            assert got_divisions == (policy.name, expected, len(expected)), (policy.name, division)
            for limit, offset in ((2, 3), (3, 0), (2, len(expected) + 4)):
                _, page, total = current_staffing(
                    cursor, now, division=division, limit=limit, offset=offset, policies=[policy]
                )
                assert (page, total) == (expected[offset : offset + limit], len(expected))
            for level, short_only in itertools.product(("county", "township", None), (True, False)):
                wanted_rows = [
                    r
                    for r in expected
                    if (level is None or r["level"] == level) and (r["shortfall"] or not short_only)
                ]
                for offset in (0, 1, len(wanted_rows) + 2):
                    _, page, total = current_staffing(
                        cursor,
                        now,
                        division=division,
                        level=level,
                        short_only=short_only,
                        limit=2,
                        offset=offset,
                        policies=[policy],
                    )
                    assert (page, total) == (wanted_rows[offset : offset + 2], len(wanted_rows))
            params, _ = _village_params(cursor, now, division, [policy])
            totals = current_village_totals(cursor, params)
            summary = snapshot.summary()
            assert totals["under_staffed"] == summary["villages_without_coordinator"]
            assert totals["review"] == summary["villages_for_review"]
            assert totals[None] == len(snapshot.villages)
        # ... and the summary route's function, with the band table the ledger has.
        for division in (None, COUNTIES[0]):
            got_summary = current_summary(cursor, now, division=division)
            assert got_summary == staffing_at(cursor, now, division=division).summary()
    assert statuses["under_staffed"] and statuses["ok"] and statuses["review"], statuses
    assert shortfalls == {True, False} and corrected, (shortfalls, corrected)
