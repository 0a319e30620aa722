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

Who is who: an actor id is a staff member's id. Every decision-maker is a staff record
(domain/staff.py ``check_decision_maker``): investigating, recommending, approving, rejecting
and adjusting a case are refused unless the actor is an active staff record of the county or of
the named contract's contractor, and the API records the staff record a caller's sign-in is
linked to (``StaffMember.SignInLinked``) as the actor (a token subject that is itself a staff
record's id still is that record). A staff record names its person at hire (the resident ID's
blind index) or by declaring; with the person known, membership of the applicant's household is
a conflict without any declaration, and relatives declared on any staff record of the same
person (several rosters) count for all of them. Only staff records whose person is unknown (hired
without a resident ID, never declared) cannot be checked: the rule is silent about them. Acts
recorded before decision-makers had to be staff records may carry a bare subject; those stay
unchecked.
A declaration, a membership change or a claim arriving after the acts re-judges the
cases concerned; a newer declaration replaces the older one, and may clear an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.person import Person
from domain.staff import StaffMember
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, ScopedRule, key_part, originators, triggered_by
from projections.sets import Read, Step

#: The acts on the scopes' cases by staff whose person is known or who declared (nobody else can be
#: checked: the candidates), with the case's applicant and the household's members over time.
_ACTS = """
SELECT a.case_id, a.actor, a.role, a.position, a.at, s.name, s.person_id,
       coalesce(r.relatives, s.relatives), coalesce(s.declared_position, s.person_position),
       s.contractor_id, c.person_id, c.household_id, c.county,
       c.claim_position, m.people, m.froms, m.tos
FROM rf_act a JOIN rf_staff s ON s.actor_id = a.actor
JOIN rf_case c ON c.case_id = a.case_id
LEFT JOIN LATERAL (
    -- one person on several rosters: the relatives declared on any of their staff records
    SELECT jsonb_object_agg(d.key, d.value) AS relatives
    FROM rf_staff o CROSS JOIN LATERAL jsonb_each(o.relatives) d
    WHERE o.person_id = s.person_id
) r ON s.person_id IS NOT NULL
LEFT JOIN LATERAL (
    SELECT array_agg(person_id ORDER BY from_position) AS people,
           array_agg(from_position ORDER BY from_position) AS froms,
           array_agg(to_at ORDER BY from_position) AS tos
    FROM rf_membership WHERE household_id = c.household_id
) m ON true
WHERE a.case_id = ANY(%b::uuid[])
  AND (s.person_id IS NOT NULL OR s.declared_position IS NOT NULL)
ORDER BY a.case_id, a.actor, a.position
"""


class ConflictOfInterest(ScopedRule):
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
    def act(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    @triggered_by(Person.CaseClaimed, reads=("case_id",))
    def claim(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [str(r.event.case_id) for r in events]

    @triggered_by(StaffMember.Hired, StaffMember.InterestsDeclared)
    def declaration(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        """A staff record naming its person or declaring: the cases it acted on, and those
        every other staff record of the same person acted on."""
        actors = [str(r.originator_id) for r in events]
        rows = yield Read(
            "SELECT DISTINCT case_id FROM rf_act WHERE actor = ANY(%(a)s)"
            " UNION SELECT a.case_id FROM rf_act a JOIN rf_staff s ON s.actor_id = a.actor"
            " WHERE s.person_id IN"
            " (SELECT person_id FROM rf_staff WHERE actor_id = ANY(%(a)s))",
            {"a": actors},
        )
        return [str(row[0]) for row in rows]

    @triggered_by(Person.Registered, Person.HouseholdChanged)
    def membership(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        people = list({r.originator_id for r in events})
        rows = yield Read(
            # cases of every household the people have belonged to ...
            "SELECT c.case_id FROM rf_case c JOIN rf_membership m"
            " ON m.household_id = c.household_id WHERE m.person_id = ANY(%s)"
            # ... and cases the people acted on as declared staff members
            " UNION SELECT a.case_id FROM rf_act a JOIN rf_staff s ON s.actor_id = a.actor"
            " WHERE s.person_id = ANY(%s)",
            (people, people),
        )
        return [str(row[0]) for row in rows]

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> Step[dict[str, list[tuple[Any, ...]]]]:
        cases: dict[str, list[tuple[Any, ...]]] = {}
        for row in (yield Read(_ACTS, (list(scopes),))):
            cases.setdefault(str(row[0]), []).append(tuple(row[1:]))
        return cases

    def judge_scope(
        self, cursor: Cursor[Any], scope: str, acts: list[tuple[Any, ...]]
    ) -> list[Finding]:
        applicant, _, county, claim_position, people, froms, tos = acts[0][9:16]
        members = list(zip(people or [], froms or [], tos or [], strict=True))
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
