"""One person in two active cases at once: in two counties, or in two recurring programmes.

The domain keeps one active application per person *and programme*; it cannot see a person
drawing dibao in one county while another county approves them too under another programme,
nor dibao and tekun (特困) together, which exclude each other. Both are read from the periods
each case was active (approved, not suspended, not closed) and the person each case claimed
(the blind-index person id of ``Person.CaseClaimed``), so the order in which the cases, their
approvals and closures arrive does not matter.

Overlap: two active periods overlapping. A pair is flagged while the overlap is ongoing, or once
it has lasted longer than ``overlap_grace_days`` in total; a case closed within the grace (a move
between counties, a change of programme) clears it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.clock import business_date
from domain.person import Person
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, originators, triggered_by
from projections.sets import Step, read_rows, read_where_in

#: Pairs of a person's active cases that overlapped long enough to flag (ongoing, or longer
#: than the grace in all) and differ in county or programme: the candidate violations.
_PAIRS = """
WITH iv AS (
    SELECT c.person_id, c.case_id, c.county, c.programme, c.received_position, c.claim_position,
           i.from_position, i.from_at, coalesce(i.to_at, 'infinity') AS to_at, i.to_position
    FROM rf_case c JOIN rf_case_interval i USING (case_id)
    WHERE c.person_id = ANY(%(people)b::uuid[]) AND i.kind = 'active'
)
SELECT a.person_id, a.case_id, b.case_id, a.county, b.county, a.programme, b.programme,
       a.received_position, b.received_position, a.claim_position, b.claim_position,
       bool_or(least(a.to_at, b.to_at) = 'infinity') AS ongoing,
       sum(CASE WHEN least(a.to_at, b.to_at) = 'infinity' THEN interval '0'
                ELSE least(a.to_at, b.to_at) - greatest(a.from_at, b.from_at) END) AS closed,
       min(greatest(a.from_at, b.from_at)) AS since,
       array_agg(a.from_position) || array_agg(b.from_position)
         || array_remove(array_agg(a.to_position) || array_agg(b.to_position), NULL) AS evidence
FROM iv a JOIN iv b ON a.person_id = b.person_id AND a.case_id < b.case_id
WHERE greatest(a.from_at, b.from_at) < least(a.to_at, b.to_at)
  AND (a.county IS DISTINCT FROM b.county OR a.programme IS DISTINCT FROM b.programme)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
HAVING bool_or(least(a.to_at, b.to_at) = 'infinity')
    OR sum(CASE WHEN least(a.to_at, b.to_at) = 'infinity' THEN interval '0'
                ELSE least(a.to_at, b.to_at) - greatest(a.from_at, b.from_at) END)
       > make_interval(days => %(grace)s)
ORDER BY 1, 2, 3
"""


class _ConcurrentCases(Rule):
    subject_kind = "person"

    @triggered_by(
        ReliefCase.Approved,
        ReliefCase.Suspended,
        ReliefCase.Resumed,
        ReliefCase.Closed,
        shared=True,
    )
    def case_person(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield from read_where_in(
            "SELECT DISTINCT person_id FROM rf_case WHERE case_id = ANY(%s)"
            " AND person_id IS NOT NULL",
            {r.originator_id for r in events},
        )
        return [str(row[0]) for row in rows]

    @triggered_by(Person.CaseClaimed, shared=True)
    def claimant(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    def concerns(self, row: tuple[Any, ...]) -> bool:
        raise NotImplementedError

    def describe(self, row: tuple[Any, ...]) -> str:
        raise NotImplementedError

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> Step[list[tuple[Any, ...]]]:
        return (
            yield from read_rows(
                _PAIRS, {"people": list(scopes), "grace": self.config.overlap_grace_days}
            )
        )

    def judge(
        self, cursor: Cursor[Any], candidates: list[tuple[Any, ...]], scopes: Sequence[str]
    ) -> list[Finding]:
        mine = set(scopes)
        findings = []
        for person, *row in candidates:
            scope = str(person)
            if scope not in mine or not self.concerns(tuple(row)):
                continue
            (case_a, case_b, county_a, county_b, _, _, received_a, received_b) = row[:8]
            ongoing, closed, since, evidence = row[10:14]
            how_long = (
                "and still are"
                if ongoing
                else f"for {closed.days} days in all (grace {self.config.overlap_grace_days})"
            )
            newcomer_county = county_b if received_b > received_a else county_a
            findings.append(
                self.finding(
                    f"{scope}|{case_a}|{case_b}",
                    scope,
                    f"{self.describe(tuple(row))} They have been active together since "
                    f"{business_date(since).isoformat()} {how_long}. Person {scope} is the "
                    "blind-index id of the applicant's resident ID.",
                    [*evidence, row[8], row[9]],
                    county=newcomer_county,
                )
            )
        return findings


def _case(case_id: Any, programme: str, county: str) -> str:
    return f"{programme} case {case_id} (county {county})"


class CrossCountyCases(_ConcurrentCases):
    """The same person in active cases in two counties at once."""

    name = "cross_county_cases"
    severity = "medium"
    description = (
        "The same person is in active relief cases in two counties at once (异地重复救助): "
        "one of the counties may be paying someone who lives and is helped elsewhere."
    )

    def concerns(self, row: tuple[Any, ...]) -> bool:
        return bool(row[2] != row[3])

    def describe(self, row: tuple[Any, ...]) -> str:
        return (
            f"The same person has active cases in two counties: {_case(row[0], row[4], row[2])}"
            f" and {_case(row[1], row[5], row[3])}."
        )


class ConcurrentRecurringProgrammes(_ConcurrentCases):
    """The same person in two recurring programmes (dibao and tekun) at once."""

    name = "concurrent_recurring_programmes"
    severity = "high"
    description = (
        "The same person draws two recurring allowances at once (最低生活保障 dibao and "
        "特困人员救助供养 tekun exclude each other): a double payment unless one case is "
        "closed within the grace period."
    )

    def concerns(self, row: tuple[Any, ...]) -> bool:
        recurring = self.config.recurring_programmes
        return bool(row[4] != row[5] and row[4] in recurring and row[5] in recurring)

    def describe(self, row: tuple[Any, ...]) -> str:
        return (
            "The same person is in two recurring programmes at once: "
            f"{_case(row[0], row[4], row[2])} and {_case(row[1], row[5], row[3])}."
        )


RULES = (CrossCountyCases, ConcurrentRecurringProgrammes)
