"""The household over time: a case paid at the old amount after its household shrank.

- ``household_shrank_unreviewed``: after the case's last means test (household investigation),
  a member of its household other than the applicant moved out or died, and payments for
  months beginning more than ``household_review_grace_days`` after that day were recorded
  without a review (or a new means test) of the case in between: the benefit, computed for the
  old household, kept being paid for one that no longer exists.

Facts, by business day: the means test (its home visit's day), the household's own record of a
member leaving (``Household.MemberMovedOut``, ``Household.MemberDied``, with the day it
happened: after the visit's day counts), payments by their month, and reviews or new means
tests (any outcome) dated on or after the change and recorded before a payment, which clear
it (a case's own records are ordered by their positions; records of different aggregates
are compared by their days only, since an import or a bulk load may save them in another
order). The applicant's own death is
``record_after_death``'s, not this rule's. A person who left is matched across both
households: the n-th membership of the household to end (``Person.HouseholdChanged``) is the
n-th move-out recorded on it, and leads to the household the person joined next, named in the
reason with its cases, so a supervisor sees one person counted in one household and living in
another.

Scope and key: the case. Re-judged when the case's records, its household's memberships or a
member's death change, so a move or death recorded after the payments it makes suspect gives
the same alert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from domain.household import Household
from domain.person import Person
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, ScopedRule, originators, triggered_by
from projections.sets import Read, Step, read_where_in

_LOSSES = """
WITH c AS (
    -- only cases whose household lost someone: most never did, and need no further look
    SELECT case_id, household_id, county, died_on FROM rf_case k
    WHERE case_id = ANY(%(cases)b::text[]::uuid[]) AND decision = 'approved'
      AND household_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM rf_household_loss l WHERE l.household_id = k.household_id)
), inv AS (
    SELECT DISTINCT ON (r.case_id) r.case_id, r.day FROM rf_record r JOIN c USING (case_id)
    WHERE r.kind = 'investigation' ORDER BY r.case_id, r.position DESC
), lost AS (
    SELECT l.*, CASE WHEN l.kind = 'moved out' THEN row_number() OVER (
        PARTITION BY l.household_id, l.kind ORDER BY l.position) END AS nth
    FROM rf_household_loss l WHERE l.household_id IN (SELECT household_id FROM c)
), loss AS (
    SELECT c.case_id, l.position, l.kind, l.on_day, l.household_id, l.nth
    FROM c JOIN inv USING (case_id) JOIN lost l ON l.household_id = c.household_id
    WHERE l.on_day > inv.day
      -- the applicant's own death is record_after_death's (eligibility.py)
      AND NOT (l.kind = 'died' AND l.on_day IS NOT DISTINCT FROM c.died_on)
)
SELECT l.case_id, l.position, l.kind, l.on_day, c.county, c.household_id,
       pay.positions, pay.periods, pay.amounts, went.household_id, went.cases
FROM loss l JOIN c USING (case_id)
JOIN LATERAL (
    SELECT array_agg(r.position ORDER BY r.position) AS positions,
           array_agg(r.period ORDER BY r.position) AS periods,
           array_agg(r.amount::text ORDER BY r.position) AS amounts
    FROM rf_record r
    WHERE r.case_id = l.case_id AND r.kind = 'payment' AND r.void_position IS NULL
      AND r.period_start > l.on_day + %(grace)s::integer
      AND NOT EXISTS (
          SELECT 1 FROM rf_record v
          WHERE v.case_id = l.case_id AND v.kind IN ('review', 'investigation')
            AND v.day >= l.on_day AND v.position < r.position)
) pay ON pay.positions IS NOT NULL
LEFT JOIN LATERAL (
    -- who moved out: the n-th membership of the household to end is the n-th move-out
    -- recorded on it; and the household that person joined next
    SELECT n.household_id,
           (SELECT array_agg(k.case_id::text ORDER BY k.case_id) FROM rf_case k
            WHERE k.household_id = n.household_id) AS cases
    FROM (SELECT m.person_id, m.to_position FROM rf_membership m
          WHERE m.household_id = l.household_id AND m.to_position IS NOT NULL
          ORDER BY m.to_position OFFSET l.nth - 1 LIMIT 1) left_
    JOIN rf_membership n ON n.person_id = left_.person_id AND n.from_position >= left_.to_position
    ORDER BY n.from_position LIMIT 1
) went ON l.kind = 'moved out'
ORDER BY l.case_id, l.position
"""


class HouseholdShrankUnreviewed(ScopedRule):
    name = "household_shrank_unreviewed"
    severity = "medium"
    subject_kind = "case"
    description = (
        "A member of the household moved out or died after the case's last means test, and "
        "the case kept being paid without a review: the amount was set for a household that "
        "no longer exists (the person who left is named with the household they joined)."
    )

    @triggered_by(
        ReliefCase.Approved,
        ReliefCase.BeneficiaryDied,  # the applicant's own death is not this rule's
        ReliefCase.Investigated,
        ReliefCase.Reviewed,
        ReliefCase.PaymentRecorded,
        ReliefCase.RecordCorrected,
    )
    def case_changed(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    @triggered_by(Household.MemberMovedOut, Household.MemberDied)
    def member_lost(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield from read_where_in(
            "SELECT case_id FROM rf_case WHERE household_id = ANY(%s)",
            {r.originator_id for r in events},
        )
        return [str(row[0]) for row in rows]

    @triggered_by(ReliefCase.ApplicationReceived)
    def case_elsewhere(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        """A new case of a household someone joined after leaving another: the old
        household's cases name it."""
        rows = yield from read_where_in(
            "SELECT DISTINCT c.case_id FROM rf_case k"
            " JOIN rf_membership n ON n.household_id = k.household_id"
            " JOIN rf_membership m ON m.person_id = n.person_id AND m.to_position IS NOT NULL"
            " JOIN rf_case c ON c.household_id = m.household_id"
            " WHERE k.case_id = ANY(%s)",
            {r.originator_id for r in events},
        )
        return [str(row[0]) for row in rows]

    @triggered_by(Person.HouseholdChanged)
    def person_moved(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        """Where a person who left went: the cases of every household they belonged to."""
        rows = yield from read_where_in(
            "SELECT DISTINCT c.case_id FROM rf_case c JOIN rf_membership m"
            " ON m.household_id = c.household_id WHERE m.person_id = ANY(%s)",
            {r.originator_id for r in events},
        )
        return [str(row[0]) for row in rows]

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> Step[dict[str, list[tuple[Any, ...]]]]:
        rows = yield Read(
            _LOSSES, {"cases": list(scopes), "grace": self.config.household_review_grace_days}
        )
        found: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            found.setdefault(str(row[0]), []).append(tuple(row[1:]))
        return found

    def judge_scope(
        self, cursor: Cursor[Any], scope: str, losses: list[tuple[Any, ...]]
    ) -> list[Finding]:
        described: list[str] = []
        evidence: list[int] = []
        payments: set[tuple[int, str, str]] = set()
        county, household = losses[0][3], losses[0][4]
        for position, how, day, _, _, positions, periods, amounts, went, cases in losses:
            where = ""
            if went is not None:
                where = f"; the person now belongs to household {went}" + (
                    f" (case {', '.join(cases)})" if cases else ""
                )
            described.append(f"a member {how} on {day.isoformat()} (position {position}){where}")
            evidence.append(position)
            payments.update(zip(positions, periods, amounts, strict=True))
        paid = sorted(payments)
        months = ", ".join(f"{period} ({amount})" for _, period, amount in paid)
        grace = dt.timedelta(days=self.config.household_review_grace_days).days
        return [
            self.finding(
                scope,
                scope,
                f"Case {scope}: household {household} lost members after the last means test "
                f"({'; '.join(described)}), and was paid for {months} without a review or a new "
                f"means test (months beginning more than {grace} days after the change).",
                evidence + [p for p, _, _ in paid],
                county=county,
            )
        ]


RULES = (HouseholdShrankUnreviewed,)
