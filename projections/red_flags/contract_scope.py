"""Work done under a contract that did not cover it: a service, household investigation or
recommendation whose work item was not in scope, whose place was outside the service area, whose
day was outside the term, which came after the contract's termination, or which was done while
the contractor was banned.

The domain's contract check refuses such work when the contract already says so, but contracts
change after the fact: an amendment or renewal takes effect from a date that may lie before the
day it is recorded, a termination takes effect at a time it names (possibly earlier), and a ban
is recorded with a start date that may lie in the past. These rules judge every piece of work
against the contract as it is known now, with the terms in force on the work's day (the day the
domain's check uses: the date of the work's own time stamp), and re-judge the contract's work
whenever its terms, termination or the contractor's bans change. A voided service clears.

Judged: services (their place), investigations (the household's hukou village, which is what the
domain checks, whatever place the visit names: place.py looks at that) and recommendations
(likewise), each under the contract it named. Work naming an unknown contract is not judged.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.case import ReliefCase
from domain.contract import Contract
from domain.contractor import Contractor
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, local_time, triggered_by

_WORK = """
SELECT r.position, r.kind, r.work_item, r.contract_day, r.starts,
       CASE WHEN r.kind = 'service' THEN r.place ELSE c.village END AS division,
       coalesce(r.contractor_id, k.contractor_id), r.case_id, c.county,
       t.position, t.work_items, t.service_area, t.term_start, t.term_end
FROM rf_record r
JOIN rf_case c USING (case_id)
LEFT JOIN rf_contract k ON k.contract_id = r.contract_id
JOIN LATERAL (
    SELECT * FROM rf_contract_terms t
    WHERE t.contract_id = r.contract_id AND t.effective_from <= r.contract_day
    ORDER BY t.effective_from DESC, t.position DESC LIMIT 1
) t ON true
WHERE r.contract_id = %s AND r.void_position IS NULL
  AND r.kind IN ('service', 'investigation', 'recommendation')
"""


def _what(row: tuple[Any, ...]) -> str:
    position, kind, work_item, _, starts = row[:5]
    label = {
        "service": f"service {work_item}",
        "investigation": "household investigation (家计调查) with home visit",
        "recommendation": "recommendation after household investigation",
    }[kind]
    return f"{label} on case {row[7]} at {local_time(starts)} (position {position})"


class _ContractWork(Rule):
    """Shared: the triggers (work, contract changes) and the evaluation over a contract's work.

    Scope: a contract id (all its work) or "contract|position" (one piece of work)."""

    subject_kind = "contract"

    @triggered_by(ReliefCase.ServiceRecorded, ReliefCase.Investigated, ReliefCase.Recommended)
    def work(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        contract_id = recorded.event.contract_id
        return [f"{contract_id}|{recorded.position}"] if contract_id else []

    @triggered_by(ReliefCase.RecordCorrected)
    def voided(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        cursor.execute(
            "SELECT contract_id, position FROM rf_record WHERE case_id = %s AND version = %s"
            " AND contract_id IS NOT NULL",
            (recorded.originator_id, recorded.event.corrects_version),
        )
        return [f"{contract_id}|{position}" for contract_id, position in cursor.fetchall()]

    @triggered_by(Contract.Awarded, Contract.Amended, Contract.Renewed, Contract.Terminated)
    def contract_changed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        contract_id, _, position = scope.partition("|")
        query = _WORK + (" AND r.position = %s" if position else "") + " ORDER BY r.position"
        cursor.execute(query, (contract_id, int(position)) if position else (contract_id,))
        rows = cursor.fetchall()
        findings = []
        for row in rows:
            found = self.check(cursor, UUID(contract_id), row)
            if found is None:
                continue
            reason, evidence = found
            findings.append(
                self.finding(
                    f"{contract_id}|{row[0]}",
                    contract_id,
                    f"{_what(row)}, under contract {contract_id}: {reason}",
                    [row[0], row[9], *evidence],
                    contractor_id=row[6],
                    county=row[8],
                )
            )
        return findings

    def check(
        self, cursor: Cursor[Any], contract_id: UUID, row: tuple[Any, ...]
    ) -> tuple[str, list[int]] | None:
        raise NotImplementedError


class WorkOutsideScope(_ContractWork):
    name = "work_outside_scope"
    severity = "medium"
    description = (
        "Work recorded under a contract whose terms in force that day do not list the work "
        "item: work the government did not buy from this contractor."
    )

    def check(
        self, cursor: Cursor[Any], contract_id: UUID, row: tuple[Any, ...]
    ) -> tuple[str, list[int]] | None:
        work_item, items = row[2], row[10]
        if work_item in items:
            return None
        return (
            f"the work item {work_item} is not in the contract's scope on "
            f"{row[3].isoformat()} ({', '.join(items)}).",
            [],
        )


class WorkOutsideArea(_ContractWork):
    name = "work_outside_area"
    severity = "medium"
    description = (
        "Work recorded under a contract at a place outside the contract's service area on that day."
    )

    def check(
        self, cursor: Cursor[Any], contract_id: UUID, row: tuple[Any, ...]
    ) -> tuple[str, list[int]] | None:
        division, area = row[5], row[11]
        if any(division.startswith(code) for code in area):
            return None
        return (
            f"the place {division} is outside the contract's service area on "
            f"{row[3].isoformat()} ({', '.join(area)}).",
            [],
        )


class WorkOutsideTerm(_ContractWork):
    name = "work_outside_term"
    severity = "medium"
    description = (
        "Work recorded under a contract on a day outside the contract's term (as amended or "
        "renewed with effect on that day)."
    )

    def check(
        self, cursor: Cursor[Any], contract_id: UUID, row: tuple[Any, ...]
    ) -> tuple[str, list[int]] | None:
        day, start, end = row[3], row[12], row[13]
        if start <= day <= end:
            return None
        return (
            f"{day.isoformat()} lies outside the contract's term "
            f"{start.isoformat()}..{end.isoformat()}.",
            [],
        )


class WorkAfterTermination(_ContractWork):
    name = "work_after_termination"
    severity = "high"
    description = (
        "Work recorded under a contract at or after the time its termination (终止合同) took "
        "effect."
    )

    def check(
        self, cursor: Cursor[Any], contract_id: UUID, row: tuple[Any, ...]
    ) -> tuple[str, list[int]] | None:
        cursor.execute(
            "SELECT position, effective_at FROM rf_purchase_fact WHERE subject_id = %s"
            " AND kind = 'termination' AND effective_at <= %s ORDER BY position LIMIT 1",
            (contract_id, row[4]),
        )
        termination = cursor.fetchone()
        if termination is None:
            return None
        return (
            f"the contract was terminated with effect from {local_time(termination[1])} "
            f"(position {termination[0]}).",
            [termination[0]],
        )


class WorkByBannedContractor(_ContractWork):
    name = "work_by_banned_contractor"
    severity = "high"
    description = (
        "Work recorded by a contractor on a day its ban from government purchase of relief "
        "services (禁止参与) covered."
    )

    @triggered_by(Contractor.Banned)
    def ban(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        cursor.execute(
            "SELECT contract_id FROM rf_contract WHERE contractor_id = %s"
            " UNION SELECT contract_id FROM rf_record WHERE contractor_id = %s"
            " AND contract_id IS NOT NULL",
            (recorded.originator_id, recorded.originator_id),
        )
        return [str(row[0]) for row in cursor.fetchall()]

    def check(
        self, cursor: Cursor[Any], contract_id: UUID, row: tuple[Any, ...]
    ) -> tuple[str, list[int]] | None:
        contractor_id, day = row[6], row[3]
        if contractor_id is None:
            return None
        cursor.execute(
            "SELECT position, day_from, day_to FROM rf_purchase_fact WHERE subject_id = %s"
            " AND kind = 'ban' AND day_from <= %s AND %s <= day_to ORDER BY position",
            (contractor_id, day, day),
        )
        bans = cursor.fetchall()
        if not bans:
            return None
        spans = ", ".join(f"{start.isoformat()}..{end.isoformat()}" for _, start, end in bans)
        return (
            f"contractor {contractor_id} was banned on {day.isoformat()} ({spans}).",
            [position for position, _, _ in bans],
        )


RULES = (
    WorkOutsideScope,
    WorkOutsideArea,
    WorkOutsideTerm,
    WorkAfterTermination,
    WorkByBannedContractor,
)
