"""Implausible place: a home visit recorded in a village other than the household's.

A means-test home visit (入户调查) is made at the household: the village where it is registered
(hukou) or where it lives. A visit recorded in any other village says the visitor was not where
the record claims, or the record is wrong. The household's villages come from its registration
(the case's hukou village when the household is not known to this projection), so a household
event arriving after the investigation re-judges it.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, local_time, triggered_by
from projections.red_flags.facts import HouseholdRegistered

_VISITS = """
SELECT r.position, r.place, r.visitor, r.starts, r.contractor_id, c.county, c.village,
       h.registered, h.residence, h.position
FROM rf_record r JOIN rf_case c USING (case_id)
LEFT JOIN rf_household h ON h.household_id = c.household_id
WHERE r.case_id = %s AND r.kind = 'investigation'
ORDER BY r.position
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
    def investigation(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    @triggered_by(HouseholdRegistered)
    def household(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        cursor.execute(
            "SELECT case_id FROM rf_case WHERE household_id = %s", (recorded.originator_id,)
        )
        return [str(row[0]) for row in cursor.fetchall()]

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        cursor.execute(_VISITS, (scope,))
        findings = []
        for (
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
        ) in cursor.fetchall():
            villages = {hukou, home} if known is not None else {village}
            if place in villages:
                continue
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
