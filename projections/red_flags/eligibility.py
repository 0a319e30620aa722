"""Payments and services dated when the beneficiary could not have received them: after their
death, after the case was closed, or while it was suspended.

The domain refuses these when it already knows the fact, but facts arrive late: a death
recorded months after the payments that followed it, a service dated inside a suspension that
is recorded after the resumption, a person whose case was already closed when the death was
recorded (the death then reaches the person, not the case). Each rule re-reads the whole case
whenever a record, a death, a closure, a suspension or a correction arrives, so it fires in
whatever order those facts come; a record voided by a correction clears its alert.

Dating: a payment is dated by its period (a calendar month); it is flagged when the month
begins after the day of death or of closure, or begins on a day the case was suspended (as the
domain's own payment rule reads it). A service is dated by its start (business day, Asia/
Shanghai, for the death; the instant for closure and suspension).
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.person import Person
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, local_time, triggered_by

_CASE = """
SELECT c.county, c.died_on, c.died_position, p.died_on, p.died_position,
       c.closed_at, c.closed_on, c.closed_position
FROM rf_case c LEFT JOIN rf_person p ON p.person_id = c.person_id
WHERE c.case_id = %s
"""
_RECORDS = """
SELECT position, kind, period, period_start, starts, day, contractor_id, actor
FROM rf_record
WHERE case_id = %s AND kind IN ('payment', 'service') AND void_position IS NULL
"""


def _what(record: tuple[Any, ...]) -> str:
    position, kind, period, _, starts = record[:5]
    if kind == "payment":
        return f"payment for {period} (position {position})"
    return f"service starting {local_time(starts)} (position {position})"


class _CaseRecords(Rule):
    """Shared: a new or corrected record is judged alone (scope "case|position"); a death,
    closure or suspension re-judges every record of the case (scope: the case id)."""

    subject_kind = "case"

    @triggered_by(ReliefCase.PaymentRecorded, ReliefCase.ServiceRecorded)
    def record(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [f"{recorded.originator_id}|{recorded.position}"]

    @triggered_by(ReliefCase.RecordCorrected)
    def corrected(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        cursor.execute(
            "SELECT position FROM rf_record WHERE case_id = %s AND version = %s"
            " AND kind IN ('payment', 'service')",
            (recorded.originator_id, recorded.event.corrects_version),
        )
        return [f"{recorded.originator_id}|{row[0]}" for row in cursor.fetchall()]

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        case_id, _, position = scope.partition("|")
        cursor.execute(_CASE, (case_id,))
        case = cursor.fetchone()
        if case is None:
            return []
        context = self.context(cursor, case_id, case)
        if context is None:
            return []  # no death, closure or suspension: nothing can be wrong
        if position:
            cursor.execute(_RECORDS + " AND position = %s", (case_id, int(position)))
        else:
            cursor.execute(_RECORDS + " ORDER BY position", (case_id,))
        findings = []
        for record in cursor.fetchall():
            found = self.check(context, case_id, record)
            if found is not None:
                reason, evidence = found
                findings.append(
                    self.finding(
                        f"{case_id}|{record[0]}",
                        case_id,
                        reason,
                        [record[0], *evidence],
                        contractor_id=record[6],
                        county=case[0],
                    )
                )
        return findings

    def context(self, cursor: Cursor[Any], case_id: str, case: tuple[Any, ...]) -> Any:
        """What the records are judged against; None when there is nothing."""
        raise NotImplementedError

    def check(
        self, context: Any, case_id: str, record: tuple[Any, ...]
    ) -> tuple[str, list[int | None]] | None:
        raise NotImplementedError


class RecordAfterDeath(_CaseRecords):
    """A payment or service dated after the beneficiary's death."""

    name = "record_after_death"
    severity = "high"
    description = (
        "A benefit paid for, or a service dated on, a time after the beneficiary's recorded "
        "death: money that went to no living recipient, or a service that cannot have been "
        "delivered (falsified record, 弄虚作假)."
    )

    @triggered_by(ReliefCase.BeneficiaryDied)
    def death_on_case(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    @triggered_by(Person.Died)
    def death_of_person(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        cursor.execute(
            "SELECT case_id FROM rf_case WHERE person_id = %s", (recorded.originator_id,)
        )
        return [str(row[0]) for row in cursor.fetchall()]

    @triggered_by(Person.CaseClaimed)
    def claim(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.event.case_id)]

    def context(self, cursor: Cursor[Any], case_id: str, case: tuple[Any, ...]) -> Any:
        known = [(on, position) for on, position in ((case[1], case[2]), (case[3], case[4]))]
        known = [(on, position) for on, position in known if on is not None]
        if not known:
            return None
        died_on = min(on for on, _ in known)
        return died_on, sorted(position for on, position in known if on == died_on)

    def check(
        self, context: Any, case_id: str, record: tuple[Any, ...]
    ) -> tuple[str, list[int | None]] | None:
        died_on, evidence = context
        kind, period_start, day = record[1], record[3], record[5]
        dated = period_start if kind == "payment" else day
        if dated <= died_on:
            return None
        return (
            f"Case {case_id}: {_what(record)} is dated {dated.isoformat()}, after the "
            f"beneficiary's death on {died_on.isoformat()} (recorded at position "
            f"{', '.join(map(str, evidence))}).",
            evidence,
        )


class RecordAfterClosure(_CaseRecords):
    """A payment or service dated after the case was closed."""

    name = "record_after_closure"
    severity = "high"
    description = (
        "A benefit paid for, or a service dated on, a time after the case was closed (终止): "
        "nothing is owed or delivered on a closed case."
    )

    @triggered_by(ReliefCase.Closed)
    def closure(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    def context(self, cursor: Cursor[Any], case_id: str, case: tuple[Any, ...]) -> Any:
        closed_at, closed_on, closed_position = case[5], case[6], case[7]
        return None if closed_at is None else (closed_at, closed_on, closed_position)

    def check(
        self, context: Any, case_id: str, record: tuple[Any, ...]
    ) -> tuple[str, list[int | None]] | None:
        closed_at, closed_on, closed_position = context
        kind, period_start, starts = record[1], record[3], record[4]
        if kind == "payment" and period_start > closed_on:
            dated = period_start.isoformat()
        elif kind == "service" and starts > closed_at:
            dated = local_time(starts)
        else:
            return None
        return (
            f"Case {case_id}: {_what(record)} is dated {dated}, after the case was closed at "
            f"{local_time(closed_at)} (position {closed_position}).",
            [closed_position],
        )


class RecordInSuspension(_CaseRecords):
    """A payment for a month that began during a suspension, or a service dated in one."""

    name = "record_in_suspension"
    severity = "medium"
    description = (
        "A benefit paid for a month that began while the case was suspended (暂停), or a "
        "service dated inside a suspension: the case was not in payment then."
    )

    @triggered_by(ReliefCase.Suspended, ReliefCase.Resumed)
    def suspension(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    def context(self, cursor: Cursor[Any], case_id: str, case: tuple[Any, ...]) -> Any:
        cursor.execute(
            "SELECT from_position, from_at, from_day, to_position, to_at, to_day"
            " FROM rf_case_interval WHERE case_id = %s AND kind = 'suspended'"
            " ORDER BY from_position",
            (case_id,),
        )
        return cursor.fetchall() or None

    def check(
        self, context: Any, case_id: str, record: tuple[Any, ...]
    ) -> tuple[str, list[int | None]] | None:
        kind, period_start, starts = record[1], record[3], record[4]
        for from_position, from_at, from_day, to_position, to_at, to_day in context:
            if kind == "payment":
                inside = from_day <= period_start and (to_day is None or period_start < to_day)
                dated = period_start.isoformat()
            else:
                inside = from_at <= starts and (to_at is None or starts < to_at)
                dated = local_time(starts)
            if inside:
                until = f"until {local_time(to_at)}" if to_at is not None else "still suspended"
                return (
                    f"Case {case_id}: {_what(record)} is dated {dated}, while the case was "
                    f"suspended (from {local_time(from_at)}, {until}).",
                    [from_position, to_position],
                )
        return None


RULES = (RecordAfterDeath, RecordAfterClosure, RecordInSuspension)
