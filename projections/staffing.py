"""Staffing (经办服务人员配备): the history the staffing view is computed from.

Every row is an interval or a dated fact derived from one aggregate's own events (a case's
activity, a staff member's assignments, a contract's terms), so the tables are the same whatever
order different aggregates' events arrive in (PostgreSQL log or Kafka partitions), and the
position at any past moment is a query, not a stored copy. The band tables are applied when the
view is read (projections/staffing_view.py), so a new table needs no replay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.case import ReliefCase
from domain.clock import BUSINESS_TZ
from domain.contract import Contract
from domain.staff import StaffMember
from projections.base import FoldingProjection, RecordedEvent, handles
from projections.payloads import terms_of
from projections.sets import Column, insert, select_where_in, upsert


class StaffingProjection(FoldingProjection):
    name = "staffing"
    tables = (
        """CREATE TABLE case_home (
            case_id uuid PRIMARY KEY, household_id uuid NOT NULL, village text NOT NULL
        )""",
        """CREATE TABLE case_activity (
            case_id uuid NOT NULL,
            household_id uuid NOT NULL,
            village text NOT NULL,
            active_from timestamptz NOT NULL,
            active_to timestamptz,
            PRIMARY KEY (case_id, active_from)
        )""",
        "CREATE INDEX case_activity_village ON case_activity (village text_pattern_ops)",
        """CREATE TABLE staff_member (
            staff_id uuid PRIMARY KEY, kind text NOT NULL, employer text NOT NULL,
            contract_id uuid
        )""",
        """CREATE TABLE staff_assignment (
            staff_id uuid NOT NULL,
            division text NOT NULL,
            assigned_from timestamptz NOT NULL,
            assigned_to timestamptz,
            PRIMARY KEY (staff_id, assigned_from)
        )""",
        """CREATE TABLE contract_terms (
            contract_id uuid NOT NULL,
            recorded_at timestamptz NOT NULL,
            effective_from date NOT NULL,
            term_start date NOT NULL,
            term_end date NOT NULL,
            PRIMARY KEY (contract_id, recorded_at)
        )""",
        """CREATE TABLE contract_termination (
            contract_id uuid PRIMARY KEY, recorded_at timestamptz NOT NULL,
            effective_at timestamptz NOT NULL
        )""",
    )
    views = (
        "case_activity",
        "staff_member",
        "staff_assignment",
        "contract_terms",
        "contract_termination",
    )

    def load_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> StaffingBatch:
        return StaffingBatch.load(cursor, events)

    # Cases ---------------------------------------------------------------------------------

    @handles(ReliefCase.ApplicationReceived)
    def received(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.homes[recorded.originator_id] = (e.household_id, e.registered_division)
        batch.new_homes.append((recorded.originator_id, e.household_id, e.registered_division))

    @handles(ReliefCase.Approved, ReliefCase.Resumed)
    def became_active(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        home = batch.homes.get(recorded.originator_id)
        if home is None:
            raise LookupError(f"case {recorded.originator_id} was never received")
        batch.activity.open(recorded.originator_id, recorded.timestamp, home)

    @handles(ReliefCase.Suspended, ReliefCase.Closed)
    def became_inactive(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        batch.activity.close(recorded.originator_id, lambda _start: recorded.timestamp)

    # Staff ---------------------------------------------------------------------------------

    @handles(StaffMember.Hired)
    def hired(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        employer = "contractor" if e.contract_id else "government"
        batch.staff.append((recorded.originator_id, e.kind, employer, e.contract_id))

    @staticmethod
    def _end_assignment(batch: StaffingBatch, staff_id: UUID, at: dt.datetime) -> None:
        batch.assignments.close(staff_id, lambda start: max(at, start))

    @handles(StaffMember.Assigned)
    def assigned(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        self._end_assignment(batch, recorded.originator_id, recorded.timestamp)
        batch.assignments.open(
            recorded.originator_id, recorded.timestamp, (recorded.event.division,)
        )

    @handles(StaffMember.Removed)
    def removed(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        # Removed as of its date, but never before it was recorded: the view as it stood.
        on = dt.datetime.combine(recorded.event.on, dt.time.min, BUSINESS_TZ)
        self._end_assignment(batch, recorded.originator_id, max(on, recorded.timestamp))

    # Contracts -----------------------------------------------------------------------------

    @handles(Contract.Awarded)
    def awarded(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.terms.append(
            (recorded.originator_id, recorded.timestamp, dt.date.min, e.terms.start, e.terms.end)
        )

    @handles(Contract.Amended, Contract.Renewed)
    def terms_changed(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        terms = terms_of(recorded.event)
        batch.terms.append(
            (
                recorded.originator_id,
                recorded.timestamp,
                recorded.event.effective_from,
                terms.start,
                terms.end,
            )
        )

    @handles(Contract.Terminated)
    def terminated(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        batch.terminations.append(
            (recorded.originator_id, recorded.timestamp, recorded.event.effective_at)
        )


class Intervals:
    """The intervals of one table (case activity, staff assignments) a batch touches: the open
    ones read once, opened and closed in memory, the changed ones written once."""

    def __init__(self, table: str, owner: str, start: str, end: str, columns: list[Column]):
        self.table, self.owner, self.start, self.end = table, owner, start, end
        self.columns = columns  # the other columns, written with a new interval
        self.rows: dict[tuple[UUID, dt.datetime], list[Any]] = {}  # (owner, start) -> row
        self.opened: dict[UUID, list[dt.datetime]] = {}  # owner -> starts of open intervals
        self.changed: set[tuple[UUID, dt.datetime]] = set()

    def load(self, cursor: Cursor[Any], owners: set[UUID]) -> None:
        names = ", ".join(name for name, _ in self.columns)
        for row in select_where_in(
            cursor,
            f"SELECT {self.owner}, {self.start}, {names} FROM {self.table}"
            f" WHERE {self.owner} = ANY(%s) AND {self.end} IS NULL ORDER BY 1, 2",
            owners,
        ):
            self.rows[(row[0], row[1])] = [*row, None]
            self.opened.setdefault(row[0], []).append(row[1])

    def open(self, owner: UUID, start: dt.datetime, values: tuple[Any, ...]) -> None:
        self.rows[(owner, start)] = [owner, start, *values, None]
        self.opened.setdefault(owner, []).append(start)
        self.changed.add((owner, start))

    def close(self, owner: UUID, end_of: Callable[[dt.datetime], dt.datetime]) -> None:
        """End every open interval of ``owner`` at ``end_of(its start)``."""
        for start in self.opened.pop(owner, []):
            self.rows[(owner, start)][-1] = end_of(start)
            self.changed.add((owner, start))

    def write(self, cursor: Cursor[Any]) -> None:
        rows = [self.rows[key] for key in sorted(self.changed)]
        columns = [
            (self.owner, "uuid"),
            (self.start, "timestamptz"),
            *self.columns,
            (self.end, "timestamptz"),
        ]
        upsert(cursor, self.table, columns, rows, key=(self.owner, self.start))


class StaffingBatch:
    """What one batch changes in the staffing tables."""

    def __init__(self) -> None:
        self.homes: dict[UUID, tuple[UUID, str]] = {}  # case -> (household, village)
        self.new_homes: list[tuple[Any, ...]] = []
        self.activity = Intervals(
            "case_activity",
            "case_id",
            "active_from",
            "active_to",
            [("household_id", "uuid"), ("village", "text")],
        )
        self.assignments = Intervals(
            "staff_assignment", "staff_id", "assigned_from", "assigned_to", [("division", "text")]
        )
        self.staff: list[tuple[Any, ...]] = []
        self.terms: list[tuple[Any, ...]] = []
        self.terminations: list[tuple[Any, ...]] = []

    @classmethod
    def load(cls, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> StaffingBatch:
        batch = cls()
        cases = {r.originator_id for r in events if type(r.event) in CASE_STATE_EVENTS}
        for case_id, household_id, village in select_where_in(
            cursor,
            "SELECT case_id, household_id, village FROM case_home WHERE case_id = ANY(%s)",
            cases,
        ):
            batch.homes[case_id] = (household_id, village)
        batch.activity.load(cursor, cases)
        staff = {r.originator_id for r in events if type(r.event) in STAFF_STATE_EVENTS}
        batch.assignments.load(cursor, staff)
        return batch

    def write(self, cursor: Cursor[Any]) -> None:
        insert(
            cursor,
            "case_home",
            (("case_id", "uuid"), ("household_id", "uuid"), ("village", "text")),
            self.new_homes,
        )
        self.activity.write(cursor)
        insert(
            cursor,
            "staff_member",
            (("staff_id", "uuid"), ("kind", "text"), ("employer", "text"), ("contract_id", "uuid")),
            self.staff,
        )
        self.assignments.write(cursor)
        insert(
            cursor,
            "contract_terms",
            (
                ("contract_id", "uuid"),
                ("recorded_at", "timestamptz"),
                ("effective_from", "date"),
                ("term_start", "date"),
                ("term_end", "date"),
            ),
            self.terms,
        )
        insert(
            cursor,
            "contract_termination",
            (
                ("contract_id", "uuid"),
                ("recorded_at", "timestamptz"),
                ("effective_at", "timestamptz"),
            ),
            self.terminations,
        )


#: Events that read or change a case's open activity, a staff member's open assignment.
CASE_STATE_EVENTS = frozenset(
    {ReliefCase.Approved, ReliefCase.Resumed, ReliefCase.Suspended, ReliefCase.Closed}
)
STAFF_STATE_EVENTS = frozenset({StaffMember.Assigned, StaffMember.Removed})
