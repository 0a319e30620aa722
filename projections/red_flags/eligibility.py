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

from collections.abc import Sequence
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.person import Person
from projections.base import RecordedEvent
from projections.red_flags.engine import (
    Finding,
    Rule,
    id_text,
    local_time,
    originators,
    record_scopes,
    triggered_by,
)
from projections.sets import Read, Step, read_rows, read_where_in

#: The payments and services of the scopes ("case" or "case|position") dated after a death,
#: after the closure or inside a suspension (the first suspension containing them): only the
#: candidate violations, each with what the three rules judge it against.
_RECORDS = """
WITH r AS (
    -- one scan for both kinds of scope (a UNION would compare whole rows to drop repeats)
    SELECT * FROM rf_record
    WHERE position = ANY(%(positions)b::bigint[]) OR case_id = ANY(%(subjects)b::uuid[])
),
suspended AS (
    -- the cases judged that were ever suspended: few are, and only their records need the
    -- look into the intervals (a probe per record was half the statement's time); from the
    -- parameters, not from r, which read twice would be materialized, losing the memoized
    -- case lookups below
    SELECT coalesce(array_agg(DISTINCT i.case_id), '{}') AS cases FROM rf_case_interval i
    WHERE i.case_id = ANY(%(every_subject)b::uuid[]) AND i.kind = 'suspended'
)
SELECT r.case_id, r.position, r.kind, r.period, r.period_start, r.starts, r.day,
       r.contractor_id, c.county, c.died_on, c.died_position, p.died_on, p.died_position,
       c.closed_at, c.closed_on, c.closed_position,
       i.from_position, i.from_at, i.to_position, i.to_at
-- LATERAL: one index lookup per record; a join left to the planner hashed the whole case
-- table every batch (its generic plan cannot tell a batch's few records from many)
FROM r CROSS JOIN LATERAL (SELECT * FROM rf_case c WHERE c.case_id = r.case_id LIMIT 1) c
LEFT JOIN rf_person p ON p.person_id = c.person_id
LEFT JOIN LATERAL (
    SELECT i.from_position, i.from_at, i.to_position, i.to_at FROM rf_case_interval i
    -- of the outer row alone: a filter gating the index scan, once per record
    WHERE r.case_id = ANY((SELECT cases FROM suspended)::uuid[])
      AND i.case_id = r.case_id AND i.kind = 'suspended'
      AND CASE WHEN r.kind = 'payment'
               THEN i.from_day <= r.period_start AND (i.to_day IS NULL OR r.period_start < i.to_day)
               ELSE i.from_at <= r.starts AND (i.to_at IS NULL OR r.starts < i.to_at) END
    ORDER BY i.from_position LIMIT 1
) i ON true
WHERE r.kind IN ('payment', 'service') AND r.void_position IS NULL
  AND ((CASE WHEN r.kind = 'payment' THEN r.period_start ELSE r.day END)
        > least(c.died_on, p.died_on)
   OR (r.kind = 'payment' AND r.period_start > c.closed_on)
   OR (r.kind = 'service' AND r.starts > c.closed_at)
   OR i.from_position IS NOT NULL)
ORDER BY r.position
"""


def _what(record: tuple[Any, ...]) -> str:
    position, kind, period, _, starts = record[1:6]
    if kind == "payment":
        return f"payment for {period} (position {position})"
    return f"service starting {local_time(starts)} (position {position})"


class _CaseRecords(Rule):
    """Shared: a new or corrected record is judged alone (scope "case|position"); a death,
    closure or suspension re-judges every record of the case (scope: the case id)."""

    subject_kind = "case"

    @triggered_by(ReliefCase.PaymentRecorded, ReliefCase.ServiceRecorded, shared=True)
    def record(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [f"{id_text(r.originator_id)}|{r.position}" for r in events]

    @triggered_by(ReliefCase.RecordCorrected, reads=("corrects_version",), shared=True)
    def corrected(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield Read(
            "SELECT r.case_id, r.position FROM rf_record r"
            " JOIN unnest(%b::uuid[], %b::integer[]) AS c(case_id, version)"
            " ON r.case_id = c.case_id AND r.version = c.version"
            " WHERE r.kind IN ('payment', 'service')",
            (
                [r.originator_id for r in events],
                [r.event.corrects_version for r in events],
            ),
        )
        return [f"{case_id}|{position}" for case_id, position in rows]

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> Step[list[tuple[Any, ...]]]:
        return (yield from read_rows(_RECORDS, record_scopes(scopes)))

    def judge(
        self, cursor: Cursor[Any], candidates: list[tuple[Any, ...]], scopes: Sequence[str]
    ) -> list[Finding]:
        mine = set(scopes)
        findings = []
        for record in candidates:
            case_id, position = str(record[0]), record[1]
            if case_id not in mine and f"{case_id}|{position}" not in mine:
                continue
            found = self.check(case_id, record)
            if found is not None:
                reason, evidence = found
                findings.append(
                    self.finding(
                        f"{case_id}|{position}",
                        case_id,
                        reason,
                        [position, *evidence],
                        contractor_id=record[7],
                        county=record[8],
                    )
                )
        return findings

    def check(self, case_id: str, record: tuple[Any, ...]) -> tuple[str, list[int | None]] | None:
        """Whether the record (a row of _RECORDS) breaks this rule: the reason and evidence."""
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
    def death_on_case(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    @triggered_by(Person.Died)
    def death_of_person(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield from read_where_in(
            "SELECT case_id FROM rf_case WHERE person_id = ANY(%s)",
            {r.originator_id for r in events},
        )
        return [str(row[0]) for row in rows]

    @triggered_by(Person.CaseClaimed, reads=("case_id",))
    def claim(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [str(r.event.case_id) for r in events]

    def check(self, case_id: str, record: tuple[Any, ...]) -> tuple[str, list[int | None]] | None:
        known = [(on, at) for on, at in ((record[9], record[10]), (record[11], record[12]))]
        known = [(on, at) for on, at in known if on is not None]
        if not known:
            return None
        died_on = min(on for on, _ in known)
        evidence = sorted(at for on, at in known if on == died_on)
        kind, period_start, day = record[2], record[4], record[6]
        dated = period_start if kind == "payment" else day
        if dated <= died_on:
            return None
        return (
            f"Case {case_id}: {_what(record)} is dated {dated.isoformat()}, after the "
            f"beneficiary's death on {died_on.isoformat()} (recorded at position "
            f"{', '.join(map(str, evidence))}).",
            list(evidence),
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
    def closure(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    def check(self, case_id: str, record: tuple[Any, ...]) -> tuple[str, list[int | None]] | None:
        closed_at, closed_on, closed_position = record[13:16]
        if closed_at is None:
            return None
        kind, period_start, starts = record[2], record[4], record[5]
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
    def suspension(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    def check(self, case_id: str, record: tuple[Any, ...]) -> tuple[str, list[int | None]] | None:
        from_position, from_at, to_position, to_at = record[16:20]
        if from_position is None:
            return None
        kind, period_start, starts = record[2], record[4], record[5]
        dated = period_start.isoformat() if kind == "payment" else local_time(starts)
        until = f"until {local_time(to_at)}" if to_at is not None else "still suspended"
        return (
            f"Case {case_id}: {_what(record)} is dated {dated}, while the case was "
            f"suspended (from {local_time(from_at)}, {until}).",
            [from_position, to_position],
        )


RULES = (RecordAfterDeath, RecordAfterClosure, RecordInSuspension)
