"""Implausible place: a home visit recorded in a village other than the household's.

A means-test home visit (入户调查) is made at the household: the village where it is registered
(hukou) or where it lives. A visit recorded in any other village says the visitor was not where
the record claims, or the record is wrong. The household's villages come from its registration
(the case's hukou village when the household is not known to this projection), so a household
event arriving after the investigation re-judges it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, local_time, originators, triggered_by
from projections.red_flags.facts import HouseholdRegistered
from projections.sets import Step, read_rows, read_where_in

#: The home visits of the scopes (case ids) recorded in a village that is neither the
#: household's hukou village nor the one it lives in (the case's village when the household is
#: unknown here): only the violations.
_VISITS = """
SELECT r.case_id, r.position, r.place, r.visitor, r.starts, r.contractor_id, c.county,
       c.village, h.registered, h.residence, h.position
FROM rf_record r JOIN rf_case c USING (case_id)
LEFT JOIN rf_household h ON h.household_id = c.household_id
WHERE r.case_id = ANY(%b::uuid[]) AND r.kind = 'investigation'
  AND CASE WHEN h.position IS NULL THEN r.place IS DISTINCT FROM c.village
           ELSE r.place IS DISTINCT FROM h.registered AND r.place IS DISTINCT FROM h.residence
      END
ORDER BY r.case_id, r.position
"""


class HomeVisitElsewhere(Rule):
    name = "home_visit_elsewhere"
    severity = "medium"
    subject_kind = "case"
    description = (
        "A home visit recorded in a village that is neither the household's registered (hukou) "
        "village nor the village it lives in."
    )

    @triggered_by(ReliefCase.Investigated)
    def investigation(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    @triggered_by(HouseholdRegistered)
    def household(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield from read_where_in(
            "SELECT case_id FROM rf_case WHERE household_id = ANY(%s)",
            {r.originator_id for r in events},
        )
        return [str(row[0]) for row in rows]

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> Step[list[tuple[Any, ...]]]:
        return (yield from read_rows(_VISITS, (list(scopes),)))

    def judge(
        self, cursor: Cursor[Any], candidates: list[tuple[Any, ...]], scopes: Sequence[str]
    ) -> list[Finding]:
        findings = []
        for (
            case_id,
            position,
            place,
            visitor,
            at,
            contractor,
            county,
            village,
            hukou,
            home,
            known,
        ) in candidates:
            scope = str(case_id)
            findings.append(
                self.finding(
                    f"{scope}|{position}",
                    scope,
                    f"Case {scope}: {visitor} recorded the home visit of {local_time(at)} "
                    f"(position {position}) in village {place}, but the household is "
                    f"registered in {hukou or village}"
                    + (f" and lives in {home}." if home and home != hukou else "."),
                    [position, known],
                    contractor_id=contractor,
                    county=county,
                )
            )
        return findings


RULES = (HomeVisitElsewhere,)
