"""Conflict of interest (利益冲突): an investigator or approver acting on the case of someone
they are tied to.

A staff member acted on a case as investigator (recorded the investigation, made the home
visit, recommended, corrected the means test) or as approver (approved, rejected, adjusted the
amount), and their declaration (``StaffMember.InterestsDeclared``) shows that
- they are the applicant themself;
- the applicant is one of their declared relatives;
- they belong to the applicant's household (the case's household), per the people's household
  membership: a membership that had not ended before the act counts, so a household registered
  after the act still does;
- one of their declared relatives belongs to the applicant's household (same reading).
They should have withdrawn (回避). The comparison uses blind-index person ids only: the
declaration, the applicant's claim (``Person.CaseClaimed``) and the memberships all carry the
keyed hash of the resident ID, never the number.

Who is who: an actor id is a staff member when it is the text of the StaffMember's UUID (the
same mapping the domain uses when it refuses a self-rating). Actors with no StaffMember record,
or staff who never declared, cannot be checked: the rule is silent about them, and says so in
no alert. A declaration, a membership change or a claim arriving after the acts re-judges the
cases concerned; a newer declaration replaces the older one, and may clear an alert.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.person import Person
from domain.staff import StaffMember
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, key_part, triggered_by

_ACTS = """
SELECT a.actor, a.role, a.position, a.at, s.name, s.person_id, s.relatives,
       s.declared_position, s.contractor_id
FROM rf_act a JOIN rf_staff s ON s.actor_id = a.actor
WHERE a.case_id = %s AND s.declared_position IS NOT NULL
ORDER BY a.actor, a.position
"""


class ConflictOfInterest(Rule):
    name = "conflict_of_interest"
    severity = "high"
    subject_kind = "staff"
    description = (
        "An investigator or approver acted on a case whose applicant they are, is their "
        "declared relative, or shares a household with them or with a declared relative: "
        "they should have withdrawn (回避)."
    )

    @triggered_by(
        ReliefCase.Investigated,
        ReliefCase.Recommended,
        ReliefCase.Approved,
        ReliefCase.Rejected,
        ReliefCase.Reviewed,
        ReliefCase.RecordCorrected,
    )
    def act(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    @triggered_by(Person.CaseClaimed)
    def claim(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.event.case_id)]

    @triggered_by(StaffMember.InterestsDeclared)
    def declaration(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        cursor.execute(
            "SELECT DISTINCT case_id FROM rf_act WHERE actor = %s", (str(recorded.originator_id),)
        )
        return [str(row[0]) for row in cursor.fetchall()]

    @triggered_by(Person.Registered, Person.HouseholdChanged)
    def membership(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        person = recorded.originator_id
        cursor.execute(
            # cases of every household the person has belonged to ...
            "SELECT c.case_id FROM rf_case c JOIN rf_membership m"
            " ON m.household_id = c.household_id WHERE m.person_id = %s"
            # ... and cases the person acted on as a declared staff member
            " UNION SELECT a.case_id FROM rf_act a JOIN rf_staff s ON s.actor_id = a.actor"
            " WHERE s.person_id = %s",
            (person, person),
        )
        return [str(row[0]) for row in cursor.fetchall()]

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        cursor.execute(_ACTS, (scope,))
        acts = cursor.fetchall()
        if not acts:
            return []  # nobody who declared interests acted on the case
        cursor.execute(
            "SELECT person_id, household_id, county, claim_position FROM rf_case"
            " WHERE case_id = %s",
            (scope,),
        )
        case = cursor.fetchone()
        if case is None:
            return []
        applicant, household, county, claim_position = case
        cursor.execute(
            "SELECT person_id, from_position, to_at FROM rf_membership WHERE household_id = %s"
            " ORDER BY from_position",
            (household,),
        )
        members = cursor.fetchall()
        by_actor: dict[str, list[tuple[Any, ...]]] = {}
        for act in acts:
            by_actor.setdefault(act[0], []).append(act)
        findings = []
        for actor, actor_acts in sorted(by_actor.items()):
            name, own, relatives, declared_position, contractor = actor_acts[0][4:9]
            ties: list[str] = []
            evidence: list[int | None] = [declared_position]
            for position, at in (a[2:4] for a in actor_acts):
                found = self._ties(applicant, own, relatives, members, at, claim_position, evidence)
                if found:
                    ties.extend(found)
                    evidence.append(position)
            if not ties:
                continue
            roles = sorted({a[1] for a in actor_acts})
            findings.append(
                self.finding(
                    f"{scope}|{key_part(actor)}",
                    actor,
                    f"Staff member {name} ({actor}) acted on case {scope} as "
                    f"{' and '.join(roles)}, although {'; '.join(sorted(set(ties)))}. "
                    "They should have withdrawn (回避).",
                    evidence,
                    contractor_id=contractor,
                    county=county,
                )
            )
        return findings

    @staticmethod
    def _ties(
        applicant: Any,
        own: Any,
        relatives: dict[str, str],
        members: list[tuple[Any, ...]],
        at: Any,
        claim_position: int | None,
        evidence: list[int | None],
    ) -> list[str]:
        ties = []
        if applicant is not None and own == applicant:
            ties.append("they are the applicant themself")
            evidence.append(claim_position)
        if applicant is not None and str(applicant) in relatives:
            ties.append(f"the applicant is their declared {relatives[str(applicant)]}")
            evidence.append(claim_position)
        for person, from_position, to_at in members:
            if to_at is not None and to_at <= at:
                continue  # had left the household before the act
            if person == own and person != applicant:
                ties.append("they belong to the applicant's household")
                evidence.append(from_position)
            elif str(person) in relatives and person != applicant:
                ties.append(
                    f"their declared {relatives[str(person)]} belongs to the applicant's household"
                )
                evidence.append(from_position)
        return ties


RULES = (ConflictOfInterest,)
