"""Declared income bunched just under the eligibility line, in one village or by one
investigator.

Where incomes are declared honestly, the households just under the local standard (低保标准)
and those just above it are about as many: nothing in an honest income makes it land on one
side of an administrative line. Incomes nudged down to qualify pile up just under the line
and thin out just above it.

Each case's means test in force (its latest investigation, corrections applied) gives an income
per head (total monthly income ÷ household size), placed against the line of its programme in
force in its village on the visit's day: the local standard recorded as events
(domain/living_standards.py), the most specific division's, each date's latest correction
(facts.py ``place_means``); cases no standard covers are left out. With w =
``bunching_band`` × line, the test counts the means tests under the line in
[line − w, line) and above it in [line, line + w); with n the two together, under ~
Binomial(n, ½) if declarations are honest. One-sided exact binomial test: the alert is raised
when n ≥ ``bunching_min_sample`` and P(X ≥ under) ≤ ``bunching_alpha``. Re-evaluated for the
village and for every investigator concerned whenever a means test is recorded or corrected, and
for every village and investigator with a means test a standard covers whenever that standard
is set or corrected (also long after the visits: a standard entered late, or a typing error
corrected, re-judges the visits it applies to). The evidence cites the standards used.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.living_standards import LivingStandard
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, key_part, majority, triggered_by, unkey_part
from projections.red_flags.statistics import binomial_upper_tail
from projections.sets import Read, Step, read_where_in, together

#: Means tests under and in both bands, per group, for the groups with enough of them to test.
_COUNTS = (
    "SELECT {column}, count(*) FILTER (WHERE band = 'under'), count(*) FROM rf_means"
    " WHERE {column} = ANY(%b::text[]) AND band IS NOT NULL GROUP BY 1 HAVING count(*) >= %s"
)
_UNDER = """
SELECT m.position, m.corrected_position, c.county, r.contractor_id, m.line_position
FROM rf_means m JOIN rf_case c USING (case_id) JOIN rf_record r ON r.position = m.position
WHERE m.{column} = %s AND m.band = 'under'
ORDER BY m.position LIMIT %s
"""


class _Bunching(Rule):
    column: str  # rf_means column grouping the means tests
    group: str  # how the reason names the group

    @triggered_by(ReliefCase.Investigated, ReliefCase.RecordCorrected)
    def means_test(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        return (yield from self.groups_of({r.originator_id for r in events}))

    @triggered_by(
        LivingStandard.StandardSet,
        LivingStandard.StandardCorrected,
        reads=("division", "programme", "effective_from"),
    )
    def standard(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        """The groups of every means test a standard of the batch applies to (the facts have
        placed them against it already)."""
        covered = [(r.event.division, r.event.programme, r.event.effective_from) for r in events]
        rows = yield Read(
            f"SELECT DISTINCT t.{self.column} FROM rf_means t, unnest(%s::text[], %s::text[],"
            " %s::date[]) n(division, programme, effective_from)"
            " WHERE t.programme = n.programme AND t.visited_on >= n.effective_from"
            " AND left(t.village, length(n.division)) = n.division",
            ([c[0] for c in covered], [c[1] for c in covered], [c[2] for c in covered]),
        )
        return [self.scope_of(row[0]) for row in rows]

    def groups_of(self, case_ids: set[Any]) -> Step[list[str]]:
        raise NotImplementedError

    def scope_of(self, value: str) -> str:
        """The scope of a group value (``group_value``'s inverse)."""
        return value

    def group_value(self, scope: str) -> str:
        return scope

    def family(self) -> Any:
        return (type(self).candidates, self.column)  # one family per grouping column

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> Step[dict[str, tuple[int, int]]]:
        """(under, n) of each group with at least the minimum sample."""
        rows = yield Read(
            _COUNTS.format(column=self.column),
            ([self.group_value(scope) for scope in scopes], self.config.bunching_min_sample),
        )
        return {value: (under, n) for value, under, n in rows}

    def judge(
        self, cursor: Cursor[Any], candidates: dict[str, tuple[int, int]], scopes: Sequence[str]
    ) -> Step[list[Finding]]:
        judged = yield from together(
            [
                self.judge_group(scope, value, *candidates[value])
                for scope, value in ((scope, self.group_value(scope)) for scope in scopes)
                if value in candidates
            ]
        )
        return [finding for findings in judged for finding in findings]

    def judge_group(self, scope: str, value: str, under: int, n: int) -> Step[list[Finding]]:
        config = self.config
        p = binomial_upper_tail(under, n)
        if p > Fraction(config.bunching_alpha):
            return []
        cited = yield Read(_UNDER.format(column=self.column), (value, config.max_evidence))
        which = "those" if len(cited) == under else f"the first {len(cited)} of those"
        return [
            self.finding(
                scope,
                value,
                f"{self.group} {value}: {under} of the {n} means tests within "
                f"{config.bunching_band:.0%} of the eligibility line declare an income per head "
                f"just under the line, {n - under} just above it. If declarations were honest "
                f"the two would be about equal: one-sided exact binomial p = {float(p):.2g} "
                f"(alpha {config.bunching_alpha}, minimum {config.bunching_min_sample}). "
                f"Evidence: the investigations of {which} just under the line, and the "
                "standards they were placed against.",
                [position for row in cited for position in (row[0], row[1], row[4])],
                contractor_id=majority([row[3] for row in cited]),
                county=majority([row[2] for row in cited]),
            )
        ]


class IncomeBunchingVillage(_Bunching):
    name = "income_bunching_village"
    severity = "medium"
    subject_kind = "division"
    description = (
        "In one village, declared incomes per head bunch just under the eligibility line "
        "compared with just above it (one-sided exact binomial test)."
    )
    column = "village"
    group = "Village"

    def groups_of(self, case_ids: set[Any]) -> Step[list[str]]:
        rows = yield from read_where_in(
            "SELECT DISTINCT village FROM rf_means WHERE case_id = ANY(%s)", case_ids
        )
        return [row[0] for row in rows]


class IncomeBunchingInvestigator(_Bunching):
    name = "income_bunching_investigator"
    severity = "medium"
    subject_kind = "staff"
    description = (
        "Among the means tests one investigator recorded, declared incomes per head bunch just "
        "under the eligibility line compared with just above it (one-sided exact binomial test)."
    )
    column = "investigator"
    group = "Investigator"

    def groups_of(self, case_ids: set[Any]) -> Step[list[str]]:
        # Everyone who ever investigated the case: a re-investigation moves it between them.
        rows = yield from read_where_in(
            "SELECT DISTINCT actor FROM rf_record WHERE case_id = ANY(%s)"
            " AND kind = 'investigation'",
            case_ids,
        )
        return [key_part(row[0]) for row in rows]

    def group_value(self, scope: str) -> str:
        return unkey_part(scope)

    def scope_of(self, value: str) -> str:
        return key_part(value)


RULES = (IncomeBunchingVillage, IncomeBunchingInvestigator)
