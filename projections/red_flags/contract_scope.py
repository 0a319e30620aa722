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

from collections.abc import Sequence
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.contract import Contract
from domain.contractor import Contractor
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
from projections.sets import Read, Step, read_rows

#: The work of the scopes (a contract id, or "contract|position") judged against the terms in
#: force on its day, with the termination in effect by then and the contractor's bans covering
#: the day: only the work that breaks one of the five rules (the candidate violations).
_WORK = """
WITH w AS (
    -- one scan for both kinds of scope (a UNION would compare whole rows to drop repeats)
    SELECT * FROM rf_record
    WHERE position = ANY(%(positions)b::bigint[]) OR contract_id = ANY(%(subjects)b::uuid[])
), judged AS (
    SELECT w.position, w.kind, w.work_item, w.contract_day, w.starts,
           CASE WHEN w.kind = 'service' THEN w.place ELSE c.village END AS division,
           coalesce(w.contractor_id, k.contractor_id) AS contractor, w.case_id, c.county,
           t.position AS terms_position, t.work_items, t.service_area, t.term_start, t.term_end,
           x.position AS termination_position, x.effective_at, w.contract_id
    FROM w
    -- LATERAL: one index lookup per piece of work, not the whole case table hashed
    CROSS JOIN LATERAL (
        SELECT village, county FROM rf_case c WHERE c.case_id = w.case_id LIMIT 1
    ) c
    -- LATERAL, as the case: a plain join was planned for a batch of ten records, scanning
    -- the contract table once per record
    LEFT JOIN LATERAL (
        SELECT contractor_id FROM rf_contract k WHERE k.contract_id = w.contract_id LIMIT 1
    ) k ON true
    JOIN LATERAL (
        SELECT * FROM rf_contract_terms t
        WHERE t.contract_id = w.contract_id AND t.effective_from <= w.contract_day
        ORDER BY t.effective_from DESC, t.position DESC LIMIT 1
    ) t ON true
    LEFT JOIN LATERAL (
        SELECT position, effective_at FROM rf_purchase_fact
        WHERE subject_id = w.contract_id AND kind = 'termination' AND effective_at <= w.starts
        ORDER BY position LIMIT 1
    ) x ON true
    WHERE w.contract_id IS NOT NULL AND w.void_position IS NULL
      AND w.kind IN ('service', 'investigation', 'recommendation')
)
SELECT j.*, b.bans
FROM judged j
LEFT JOIN LATERAL (
    SELECT array_agg(ARRAY[position::text, day_from::text, day_to::text] ORDER BY position) AS bans
    FROM rf_purchase_fact
    WHERE subject_id = j.contractor AND kind = 'ban'
      AND day_from <= j.contract_day AND j.contract_day <= day_to
) b ON true
WHERE NOT (j.work_item = ANY(j.work_items))
   OR NOT EXISTS (SELECT 1 FROM unnest(j.service_area) a WHERE starts_with(j.division, a))
   OR NOT (j.contract_day BETWEEN j.term_start AND j.term_end)
   OR j.termination_position IS NOT NULL
   OR b.bans IS NOT NULL
ORDER BY j.position
"""
# Columns of a _WORK row.
_POSITION, _KIND, _ITEM, _DAY, _STARTS, _DIVISION, _CONTRACTOR, _CASE, _COUNTY = range(9)
_TERMS, _ITEMS, _AREA, _TERM_START, _TERM_END, _TERMINATION, _EFFECTIVE = range(9, 16)
_CONTRACT, _BANS = 16, 17


def _what(row: tuple[Any, ...]) -> str:
    label = {
        "service": f"service {row[_ITEM]}",
        "investigation": "household investigation (家计调查) with home visit",
        "recommendation": "recommendation after household investigation",
    }[row[_KIND]]
    return f"{label} on case {row[_CASE]} at {local_time(row[_STARTS])} (position {row[_POSITION]})"


class _ContractWork(Rule):
    """Shared: the triggers (work, contract changes) and the judging of a contract's work.

    Scope: a contract id (all its work) or "contract|position" (one piece of work)."""

    subject_kind = "contract"

    @triggered_by(
        ReliefCase.ServiceRecorded,
        ReliefCase.Investigated,
        ReliefCase.Recommended,
        reads=("contract_id",),
        shared=True,
    )
    def work(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [
            f"{id_text(r.event.contract_id)}|{r.position}" for r in events if r.event.contract_id
        ]

    @triggered_by(ReliefCase.RecordCorrected, reads=("corrects_version",), shared=True)
    def voided(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield Read(
            "SELECT r.contract_id, r.position FROM rf_record r"
            " JOIN unnest(%b::uuid[], %b::integer[]) AS c(case_id, version)"
            " ON r.case_id = c.case_id AND r.version = c.version"
            " WHERE r.contract_id IS NOT NULL",
            (
                [r.originator_id for r in events],
                [r.event.corrects_version for r in events],
            ),
        )
        return [f"{contract_id}|{position}" for contract_id, position in rows]

    @triggered_by(
        Contract.Awarded, Contract.Amended, Contract.Renewed, Contract.Terminated, shared=True
    )
    def contract_changed(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> Step[list[tuple[Any, ...]]]:
        return (yield from read_rows(_WORK, record_scopes(scopes)))

    def judge(
        self, cursor: Cursor[Any], candidates: list[tuple[Any, ...]], scopes: Sequence[str]
    ) -> list[Finding]:
        mine = set(scopes)
        findings = []
        for row in candidates:
            contract_id = str(row[_CONTRACT])
            key = f"{contract_id}|{row[_POSITION]}"
            if contract_id not in mine and key not in mine:
                continue
            found = self.check(row)
            if found is None:
                continue
            reason, evidence = found
            findings.append(
                self.finding(
                    key,
                    contract_id,
                    f"{_what(row)}, under contract {contract_id}: {reason}",
                    [row[_POSITION], row[_TERMS], *evidence],
                    contractor_id=row[_CONTRACTOR],
                    county=row[_COUNTY],
                )
            )
        return findings

    def check(self, row: tuple[Any, ...]) -> tuple[str, list[int]] | None:
        """Whether the work (a row of _WORK) breaks this rule: the reason and evidence."""
        raise NotImplementedError


class WorkOutsideScope(_ContractWork):
    name = "work_outside_scope"
    severity = "medium"
    description = (
        "Work recorded under a contract whose terms in force that day do not list the work "
        "item: work the government did not buy from this contractor."
    )

    def check(self, row: tuple[Any, ...]) -> tuple[str, list[int]] | None:
        work_item, items = row[_ITEM], row[_ITEMS]
        if work_item in items:
            return None
        return (
            f"the work item {work_item} is not in the contract's scope on "
            f"{row[_DAY].isoformat()} ({', '.join(items)}).",
            [],
        )


class WorkOutsideArea(_ContractWork):
    name = "work_outside_area"
    severity = "medium"
    description = (
        "Work recorded under a contract at a place outside the contract's service area on that day."
    )

    def check(self, row: tuple[Any, ...]) -> tuple[str, list[int]] | None:
        division, area = row[_DIVISION], row[_AREA]
        if any(division.startswith(code) for code in area):
            return None
        return (
            f"the place {division} is outside the contract's service area on "
            f"{row[_DAY].isoformat()} ({', '.join(area)}).",
            [],
        )


class WorkOutsideTerm(_ContractWork):
    name = "work_outside_term"
    severity = "medium"
    description = (
        "Work recorded under a contract on a day outside the contract's term (as amended or "
        "renewed with effect on that day)."
    )

    def check(self, row: tuple[Any, ...]) -> tuple[str, list[int]] | None:
        day, start, end = row[_DAY], row[_TERM_START], row[_TERM_END]
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

    def check(self, row: tuple[Any, ...]) -> tuple[str, list[int]] | None:
        if row[_TERMINATION] is None:
            return None
        return (
            f"the contract was terminated with effect from {local_time(row[_EFFECTIVE])} "
            f"(position {row[_TERMINATION]}).",
            [row[_TERMINATION]],
        )


class WorkByBannedContractor(_ContractWork):
    name = "work_by_banned_contractor"
    severity = "high"
    description = (
        "Work recorded by a contractor on a day its ban from government purchase of relief "
        "services (禁止参与) covered."
    )

    @triggered_by(Contractor.Banned)
    def ban(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        contractors = list({r.originator_id for r in events})
        rows = yield Read(
            "SELECT contract_id FROM rf_contract WHERE contractor_id = ANY(%s)"
            " UNION SELECT contract_id FROM rf_record WHERE contractor_id = ANY(%s)"
            " AND contract_id IS NOT NULL",
            (contractors, contractors),
        )
        return [str(row[0]) for row in rows]

    def check(self, row: tuple[Any, ...]) -> tuple[str, list[int]] | None:
        contractor_id, day, bans = row[_CONTRACTOR], row[_DAY], row[_BANS]
        if contractor_id is None or not bans:
            return None
        spans = ", ".join(f"{start}..{end}" for _, start, end in bans)
        return (
            f"contractor {contractor_id} was banned on {day.isoformat()} ({spans}).",
            [int(position) for position, _, _ in bans],
        )


RULES = (
    WorkOutsideScope,
    WorkOutsideArea,
    WorkOutsideTerm,
    WorkAfterTermination,
    WorkByBannedContractor,
)
