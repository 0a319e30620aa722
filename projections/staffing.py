"""Staffing (经办服务人员配备): the history the staffing view is computed from.

Every row is an interval or a dated fact derived from one aggregate's own events (a case's
activity, a staff member's assignments, a contract's terms), so the tables are the same whatever
order different aggregates' events arrive in (PostgreSQL log or Kafka partitions), and the
position at any past moment is a query, not a stored copy. The band tables are applied when the
view is read (projections/staffing_view.py), so a new table needs no replay.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.clock import BUSINESS_TZ
from domain.contract import Contract
from domain.staff import StaffMember
from projections.base import Projection, RecordedEvent, handles


class StaffingProjection(Projection):
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

    # Cases ---------------------------------------------------------------------------------

    @handles(ReliefCase.ApplicationReceived)
    def received(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "INSERT INTO case_home (case_id, household_id, village) VALUES (%s, %s, %s)",
            (recorded.originator_id, e.household_id, e.registered_division),
        )

    @handles(ReliefCase.Approved, ReliefCase.Resumed)
    def became_active(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "INSERT INTO case_activity (case_id, household_id, village, active_from)"
            " SELECT case_id, household_id, village, %s FROM case_home WHERE case_id = %s",
            (recorded.timestamp, recorded.originator_id),
        )
        if cursor.rowcount != 1:
            raise LookupError(f"case {recorded.originator_id} was never received")

    @handles(ReliefCase.Suspended, ReliefCase.Closed)
    def became_inactive(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "UPDATE case_activity SET active_to = %s WHERE case_id = %s AND active_to IS NULL",
            (recorded.timestamp, recorded.originator_id),
        )

    # Staff ---------------------------------------------------------------------------------

    @handles(StaffMember.Hired)
    def hired(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "INSERT INTO staff_member (staff_id, kind, employer, contract_id)"
            " VALUES (%s, %s, %s, %s)",
            (
                recorded.originator_id,
                e.kind,
                "contractor" if e.contract_id else "government",
                e.contract_id,
            ),
        )

    def _end_assignment(self, cursor: Cursor[Any], staff_id: Any, at: dt.datetime) -> None:
        cursor.execute(
            "UPDATE staff_assignment SET assigned_to = greatest(%s, assigned_from)"
            " WHERE staff_id = %s AND assigned_to IS NULL",
            (at, staff_id),
        )

    @handles(StaffMember.Assigned)
    def assigned(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._end_assignment(cursor, recorded.originator_id, recorded.timestamp)
        cursor.execute(
            "INSERT INTO staff_assignment (staff_id, division, assigned_from) VALUES (%s, %s, %s)",
            (recorded.originator_id, recorded.event.division, recorded.timestamp),
        )

    @handles(StaffMember.Removed)
    def removed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        # Removed as of its date, but never before it was recorded: the view as it stood.
        on = dt.datetime.combine(recorded.event.on, dt.time.min, BUSINESS_TZ)
        self._end_assignment(cursor, recorded.originator_id, max(on, recorded.timestamp))

    # Contracts -----------------------------------------------------------------------------

    @handles(Contract.Awarded)
    def awarded(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        self._terms(cursor, recorded, dt.date.min, e.terms.start, e.terms.end)

    @handles(Contract.Amended, Contract.Renewed)
    def terms_changed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        t = recorded.event.terms
        self._terms(
            cursor,
            recorded,
            recorded.event.effective_from,
            t.start,
            t.end,
        )

    @staticmethod
    def _terms(
        cursor: Cursor[Any],
        recorded: RecordedEvent,
        effective: dt.date,
        start: dt.date,
        end: dt.date,
    ) -> None:
        cursor.execute(
            "INSERT INTO contract_terms (contract_id, recorded_at, effective_from, term_start,"
            " term_end) VALUES (%s, %s, %s, %s, %s)",
            (recorded.originator_id, recorded.timestamp, effective, start, end),
        )

    @handles(Contract.Terminated)
    def terminated(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "INSERT INTO contract_termination (contract_id, recorded_at, effective_at)"
            " VALUES (%s, %s, %s)",
            (recorded.originator_id, recorded.timestamp, recorded.event.effective_at),
        )
