"""Caseload (在册案件): cases by village, programme and status, rolled up by division code;
and the case index behind per-staff, per-contractor and waiting-application reads."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from psycopg import Cursor

from domain.case import CaseStatus, ReliefCase
from projections.base import FoldingProjection, RecordedEvent, handles
from projections.divisions import NAME_OF, name_rows
from projections.sets import Column, add_to, arrays, select_where_in, unnest, upsert

#: The status each event moves a case to.
STATUS_AFTER: dict[type, CaseStatus] = {
    ReliefCase.Investigated: CaseStatus.INVESTIGATED,
    ReliefCase.Recommended: CaseStatus.RECOMMENDED,
    ReliefCase.Approved: CaseStatus.APPROVED,
    ReliefCase.Rejected: CaseStatus.REJECTED,
    ReliefCase.Suspended: CaseStatus.SUSPENDED,
    ReliefCase.Resumed: CaseStatus.APPROVED,
    ReliefCase.Closed: CaseStatus.CLOSED,
}

LEVELS = {"province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12}

RollupKey = tuple[str, str, str, str]  # level, division, programme, status


def rollup(
    deltas: dict[tuple[str, str, str], tuple[int, int]],
) -> dict[RollupKey, tuple[int, int]]:
    """The (cases, households) changes of village groups, added up at every level: each
    village group's change counts once in its village, township, county, prefecture and
    province. A group with no net change still names its rows (every group a case passed
    through has its row at every level, as if applied event by event)."""
    totals: dict[RollupKey, tuple[int, int]] = {}
    for (village, programme, status), (cases, households) in deltas.items():
        for level, width in LEVELS.items():
            key = (level, village[:width], programme, status)
            old = totals.get(key, (0, 0))
            totals[key] = (old[0] + cases, old[1] + households)
    return totals


class CaseloadProjection(FoldingProjection):
    name = "caseload"
    tables = (
        """CREATE TABLE case_index (
            case_id uuid PRIMARY KEY,
            programme text NOT NULL,
            status text NOT NULL,
            village text NOT NULL,
            household_id uuid NOT NULL,
            received_county text NOT NULL,
            cross_region boolean NOT NULL,
            staff_id uuid,
            contractor_id uuid,
            received_at timestamptz NOT NULL,
            status_since timestamptz NOT NULL,
            last_position bigint NOT NULL
        )""",
        "CREATE INDEX case_index_village ON case_index (village text_pattern_ops)",
        "CREATE INDEX case_index_staff ON case_index (staff_id) WHERE staff_id IS NOT NULL",
        "CREATE INDEX case_index_contractor ON case_index (contractor_id)"
        " WHERE contractor_id IS NOT NULL",
        """CREATE TABLE caseload (
            village text NOT NULL,
            programme text NOT NULL,
            status text NOT NULL,
            cases integer NOT NULL CHECK (cases >= 0),
            households integer NOT NULL DEFAULT 0 CHECK (households >= 0),
            PRIMARY KEY (village, programme, status)
        )""",
        # How many of a group's cases each household has: its households count changes when
        # a household's first case enters the group or its last one leaves.
        """CREATE TABLE case_households (
            village text NOT NULL,
            programme text NOT NULL,
            status text NOT NULL,
            household_id uuid NOT NULL,
            cases integer NOT NULL CHECK (cases > 0),
            PRIMARY KEY (village, programme, status, household_id)
        )""",
        # The village rows rolled up to every level (village rows included), kept by the same
        # batch: a dashboard reads its level's rows instead of grouping every village. A
        # division's households are the sum of its villages' (a household lives in one
        # village). Codes in the "C" collation, so a prefix (LIKE '4401%') walks the index.
        """CREATE TABLE caseload_rollup (
            level text NOT NULL,
            division text COLLATE "C" NOT NULL,
            programme text NOT NULL,
            status text NOT NULL,
            cases integer NOT NULL CHECK (cases >= 0),
            households integer NOT NULL CHECK (households >= 0),
            PRIMARY KEY (level, division, programme, status)
        )""",
    )
    views = ("caseload", "case_index", "caseload_rollup")
    scoped: ClassVar[Mapping[str, Sequence[str]]] = {"caseload_rollup": ("division",)}

    def load_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> CaseloadBatch:
        return CaseloadBatch.load(cursor, events)

    @handles(ReliefCase.ApplicationReceived)
    def received(self, batch: CaseloadBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        if recorded.originator_id in batch.cases:
            raise ValueError(f"case {recorded.originator_id} was received twice")
        batch.cases[recorded.originator_id] = CaseRow(
            case_id=recorded.originator_id,
            programme=e.programme,
            status=CaseStatus.RECEIVED.value,
            village=e.registered_division,
            household_id=e.household_id,
            received_county=e.received_county,
            cross_region=e.cross_region,
            staff_id=None,
            contractor_id=None,
            received_at=e.timestamp,
            status_since=e.timestamp,
            last_position=recorded.position,
        )
        batch.changed.add(recorded.originator_id)
        batch.count(batch.cases[recorded.originator_id], +1)

    def _move(self, batch: CaseloadBatch, recorded: RecordedEvent, status: CaseStatus) -> None:
        case = batch.case(recorded.originator_id)
        if case.status != status.value:
            batch.count(case, -1)
            case.status = status.value
            batch.count(case, +1)
        case.status_since = recorded.timestamp
        case.last_position = recorded.position

    @handles(ReliefCase.Assigned)
    def assigned(self, batch: CaseloadBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        case = batch.case(recorded.originator_id)
        case.staff_id, case.contractor_id = e.staff_id, e.contractor_id
        if case.status == CaseStatus.RECEIVED.value:
            self._move(batch, recorded, CaseStatus.UNDER_INVESTIGATION)

    @handles(*STATUS_AFTER)
    def status_changed(self, batch: CaseloadBatch, recorded: RecordedEvent) -> None:
        self._move(batch, recorded, STATUS_AFTER[type(recorded.event)])


@dataclass
class CaseRow:
    """A row of ``case_index``."""

    case_id: UUID
    programme: str
    status: str
    village: str
    household_id: UUID
    received_county: str
    cross_region: bool
    staff_id: UUID | None
    contractor_id: UUID | None
    received_at: dt.datetime
    status_since: dt.datetime
    last_position: int


CASE_COLUMNS: tuple[Column, ...] = (
    ("case_id", "uuid"),
    ("programme", "text"),
    ("status", "text"),
    ("village", "text"),
    ("household_id", "uuid"),
    ("received_county", "text"),
    ("cross_region", "boolean"),
    ("staff_id", "uuid"),
    ("contractor_id", "uuid"),
    ("received_at", "timestamptz"),
    ("status_since", "timestamptz"),
    ("last_position", "bigint"),
)
GROUP_COLUMNS: tuple[Column, ...] = (("village", "text"), ("programme", "text"), ("status", "text"))
MEMBER_COLUMNS = (*GROUP_COLUMNS, ("household_id", "uuid"))

Group = tuple[str, str, str]
Member = tuple[str, str, str, UUID]


class CaseloadBatch:
    """The rows one batch touches: cases read once, counts moved in memory, written once."""

    def __init__(self, cases: dict[UUID, CaseRow]) -> None:
        self.cases = cases
        self.changed: set[UUID] = set()
        self.moves: Counter[Member] = Counter()  # cases entering (+) or leaving (-) a group

    @classmethod
    def load(cls, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> CaseloadBatch:
        known = {
            r.originator_id
            for r in events
            if not isinstance(r.event, ReliefCase.ApplicationReceived)
        }
        names = ", ".join(name for name, _ in CASE_COLUMNS)
        rows = select_where_in(
            cursor, f"SELECT {names} FROM case_index WHERE case_id = ANY(%s)", known
        )
        return cls({row[0]: CaseRow(*row) for row in rows})

    def case(self, case_id: UUID) -> CaseRow:
        case = self.cases.get(case_id)
        if case is None:
            raise LookupError(f"case {case_id} was never received")
        self.changed.add(case_id)
        return case

    def count(self, case: CaseRow, delta: int) -> None:
        self.moves[(case.village, case.programme, case.status, case.household_id)] += delta

    def write(self, cursor: Cursor[Any]) -> None:
        rows = [astuple(self.cases[case_id]) for case_id in sorted(self.changed)]
        upsert(cursor, "case_index", CASE_COLUMNS, rows, key=("case_id",))
        if not self.moves:
            return
        # Every group a case passed through has its row, as if applied event by event.
        groups: dict[Group, list[int]] = {member[:3]: [0, 0] for member in self.moves}
        moved = sorted(member for member, delta in self.moves.items() if delta)
        # How many cases each household has in each group, before and after the batch.
        cursor.execute(
            "SELECT m.village, m.programme, m.status, m.household_id, h.cases"
            f" FROM {unnest(MEMBER_COLUMNS, 'm')} JOIN case_households h"
            " USING (village, programme, status, household_id)",
            arrays(moved, 4),
        )
        before: dict[Member, int] = {tuple(row[:4]): row[4] for row in cursor.fetchall()}
        kept: list[tuple[Any, ...]] = []
        gone: list[tuple[Any, ...]] = []
        for member in moved:
            old = before.get(member, 0)
            new = old + self.moves[member]
            if new < 0:
                raise LookupError(f"no {member[1]}/{member[2]} case of {member[3]} in {member[0]}")
            group = groups[member[:3]]
            group[0] += new - old
            group[1] += (new > 0) - (old > 0)
            (kept if new else gone).append((*member, new) if new else member)
        upsert(
            cursor,
            "case_households",
            (*MEMBER_COLUMNS, ("cases", "integer")),
            kept,
            key=("village", "programme", "status", "household_id"),
        )
        if gone:
            cursor.execute(
                f"DELETE FROM case_households h USING {unnest(MEMBER_COLUMNS, 'm')}"
                " WHERE (h.village, h.programme, h.status, h.household_id)"
                " = (m.village, m.programme, m.status, m.household_id)",
                arrays(gone, 4),
            )
        changes = {key: (delta[0], delta[1]) for key, delta in groups.items()}
        add_counts(cursor, "caseload", GROUP_COLUMNS, changes)
        write_rollup(cursor, rollup(changes))


ROLLUP_COLUMNS: tuple[Column, ...] = (
    ("level", "text"),
    ("division", "text"),
    ("programme", "text"),
    ("status", "text"),
)


def write_rollup(cursor: Cursor[Any], changes: dict[RollupKey, tuple[int, int]]) -> None:
    """Move the rolled-up rows a batch changes by its counts (one statement)."""
    add_counts(cursor, "caseload_rollup", ROLLUP_COLUMNS, changes, {"division": "C"})


Key = TypeVar("Key", bound=tuple[str, ...])
COUNTS: tuple[Column, ...] = (("cases", "integer"), ("households", "integer"))


def add_counts(
    cursor: Cursor[Any],
    table: str,
    key: Sequence[Column],
    changes: Mapping[Key, tuple[int, int]],
    collations: Mapping[str, str] | None = None,
) -> None:
    """Add each row's (cases, households) change to the row of its key (a row from zero when
    there is none), in one statement; the CHECKs judge the sums. Not read first and written
    back: the read was a third of the caseload batch's server time."""
    rows = [(*row, *changes[row]) for row in sorted(changes)]
    add_to(cursor, table, key, COUNTS, rows, collations=collations)


def rollup_source(division: str | None, level: str) -> str:
    """The stored level to read for ``level`` within ``division``: the level itself, or, when
    the division is narrower (a county's counts within one township), the narrowest stored
    level that still splits along the division's code."""
    width = LEVELS[level]
    if not division or len(division) <= width:
        return level
    return next(name for name, w in LEVELS.items() if w >= len(division))


def query_caseload(
    cursor: Cursor[Any],
    *,
    division: str | None = None,
    level: str = "county",
    programme: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Cases by division (rolled up to ``level``), programme and status, in the order of
    (division, programme, status), with how many rows there are in all: read from the rows
    the projection keeps per level, never from every village."""
    width = LEVELS[level]
    source = rollup_source(division, level)
    where = ["r.level = %s", "r.cases > 0"]
    params: list[Any] = [source]
    if division:
        where.append("r.division LIKE %s")
        params.append(division + "%")
    if programme:
        where.append("r.programme = %s")
        params.append(programme)
    if status:
        where.append("r.status = %s")
        params.append(status)
    clause = " AND ".join(where)
    if source == level:
        rows_sql = (
            "SELECT r.division, r.programme, r.status, r.cases, r.households"
            f" FROM read_models.caseload_rollup r WHERE {clause}"
        )
    else:  # a level's counts within a narrower division: the few rows of that division
        rows_sql = (
            f"SELECT left(r.division, {width}) AS division, r.programme, r.status,"
            " sum(r.cases)::int AS cases, sum(r.households)::int AS households"
            f" FROM read_models.caseload_rollup r WHERE {clause} GROUP BY 1, 2, 3"
        )
    # The page, then beside each of its rows the division's name (only the page's are named).
    cursor.execute(
        f"SELECT p.*, {NAME_OF.format(code='p.division')} FROM ("
        "SELECT g.division, g.programme, g.status, g.cases, g.households, count(*) OVER ()"
        f" FROM ({rows_sql}) g ORDER BY g.division, g.programme, g.status LIMIT %s OFFSET %s"
        ") p ORDER BY p.division, p.programme, p.status",
        [*params, limit, offset],
    )
    rows = cursor.fetchall()
    total = rows[0][5] if rows else 0
    if not rows and offset:
        cursor.execute(f"SELECT count(*) FROM ({rows_sql}) g", params)
        total = cursor.fetchone()[0]  # type: ignore[index]
    items = [
        {
            "division": r[0],
            "programme": r[1],
            "status": r[2],
            "cases": r[3],
            # A household is counted once per village (a household lives in one village).
            "households": r[4],
            "name": r[6],
        }
        for r in rows
    ]
    return items, total


def query_caseload_by(
    cursor: Cursor[Any],
    *,
    key: str,
    division: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Cases per handling staff member (key staff_id) or per contractor (contractor_id)."""
    assert key in ("staff_id", "contractor_id")
    params: list[Any] = []
    where = [f"{key} IS NOT NULL"]
    if division:
        where.append("village LIKE %s")
        params.append(division + "%")
    cursor.execute(
        f"SELECT {key}, programme, status, count(*)::int, count(*) OVER ()"
        f" FROM read_models.case_index WHERE {' AND '.join(where)}"
        f" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    rows = cursor.fetchall()
    items = [{key: str(r[0]), "programme": r[1], "status": r[2], "cases": r[3]} for r in rows]
    return items, (rows[0][4] if rows else 0)


def query_waiting(cursor: Cursor[Any], *, division: str | None, now: Any) -> list[dict[str, Any]]:
    """Applications waiting at each stage before a decision, per county, with their age."""
    params: list[Any] = [now, now]
    where = "status IN ('received', 'under_investigation', 'investigated', 'recommended')"
    if division:
        where += " AND village LIKE %s"
        params.append(division + "%")
    cursor.execute(
        "SELECT left(village, 6), status, count(*)::int,"
        " extract(epoch FROM %s - min(received_at)) / 86400,"
        " extract(epoch FROM %s - min(status_since)) / 86400"
        f" FROM read_models.case_index WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    rows = [
        {
            "county": r[0],
            "stage": r[1],
            "applications": r[2],
            "oldest_application_days": round(float(r[3]), 1),
            "longest_at_stage_days": round(float(r[4]), 1),
        }
        for r in cursor.fetchall()
    ]
    return name_rows(cursor, rows, ("county",))


def query_cross_region(cursor: Cursor[Any], *, division: str | None) -> list[dict[str, Any]]:
    """Cross-region applications per county: received here for elsewhere (out) and received
    elsewhere for here (in)."""
    prefix = (division or "") + "%"
    cursor.execute(
        "SELECT county, sum(outbound)::int, sum(inbound)::int FROM ("
        "  SELECT received_county AS county, 1 AS outbound, 0 AS inbound"
        "  FROM read_models.case_index WHERE cross_region"
        "  UNION ALL SELECT left(village, 6), 0, 1 FROM read_models.case_index"
        "  WHERE cross_region) flows WHERE county LIKE %s GROUP BY county ORDER BY county",
        (prefix,),
    )
    rows = [{"county": r[0], "out": r[1], "in": r[2]} for r in cursor.fetchall()]
    return name_rows(cursor, rows, ("county",))
