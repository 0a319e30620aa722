"""Approval rate of the cases one contractor investigated, far above the rest of the county.

A contractor paid to investigate (家计调查) gains from approvals (more recipients, more
follow-on services), so a much higher approval rate among the households it investigated than
among those the county's other investigators (government staff and other contractors)
investigated is a lead to review.

The test, per county K and contractor c, over cases of K with a decision (approved or
rejected), each counted under the contractor of its latest investigation before the decision:
x1 approved of n1 decided investigated by c; x2 approved of n2 decided investigated by anyone
else. One-sided two-proportion z-test with pooled variance (statistics.two_proportion_z); the
alert is raised when n1 ≥ ``approval_min_cases``, n2 ≥ ``approval_min_others``,
z ≥ ``approval_z`` (3.09 ≈ one-sided p 0.001) and x1/n1 − x2/n2 ≥ ``approval_min_difference``.
It is re-evaluated for the whole county at every decision there, so it is raised and cleared as
the counts move. Counts are cases (a household with two cases counts twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, ScopedRule, triggered_by
from projections.red_flags.facts import GOVERNMENT
from projections.red_flags.statistics import two_proportion_z
from projections.sets import Read, Step, read_where_in


class ApprovalRateOutlier(ScopedRule):
    name = "approval_rate_outlier"
    severity = "medium"
    subject_kind = "contractor"
    description = (
        "The households one contractor investigated are approved far more often than those "
        "the county's other investigators investigated (one-sided two-proportion z-test)."
    )

    @triggered_by(ReliefCase.Approved, ReliefCase.Rejected)
    def decision(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield from read_where_in(
            "SELECT DISTINCT county FROM rf_case WHERE case_id = ANY(%s)",
            {r.originator_id for r in events},
        )
        return [row[0] for row in rows if row[0]]

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> Step[dict[str, list[tuple[Any, ...]]]]:
        """The decision counts of the counties where some contractor decided enough cases to
        be tested."""
        rows = yield Read(
            "SELECT county, investigated_by, approved, decided FROM rf_decision_count d"
            " WHERE county = ANY(%b::text[]) AND EXISTS (SELECT 1 FROM rf_decision_count x"
            " WHERE x.county = d.county AND x.investigated_by <> %s AND x.decided >= %s)"
            " ORDER BY county, investigated_by",
            (list(scopes), GOVERNMENT, self.config.approval_min_cases),
        )
        counties: dict[str, list[tuple[Any, ...]]] = {}
        for county, *group in rows:
            counties.setdefault(county, []).append(tuple(group))
        return counties

    def judge_scope(
        self, cursor: Cursor[Any], scope: str, groups: list[tuple[Any, ...]]
    ) -> Step[list[Finding]]:
        all_approved = sum(row[1] for row in groups)
        all_decided = sum(row[2] for row in groups)
        config = self.config
        outliers = []
        for contractor, x1, n1 in groups:
            if contractor == GOVERNMENT:
                continue
            x2, n2 = all_approved - x1, all_decided - n1
            if n1 < config.approval_min_cases or n2 < config.approval_min_others:
                continue
            z = two_proportion_z(x1, n1, x2, n2)
            difference = Decimal(x1) / n1 - Decimal(x2) / n2
            if z is None or z < float(config.approval_z):
                continue
            if difference < config.approval_min_difference:
                continue
            outliers.append((contractor, x1, n1, x2, n2, z))
        if not outliers:
            return []
        # every outlier's evidence and name, read at once
        answers = yield [
            read
            for contractor, *_ in outliers
            for read in (
                Read(
                    "SELECT decision_position FROM rf_case WHERE county = %s"
                    " AND investigating_contractor = %s AND decision = 'approved'"
                    " ORDER BY decision_position LIMIT %s",
                    (scope, contractor, config.max_evidence),
                ),
                Read("SELECT name FROM rf_contractor WHERE contractor_id = %s", (contractor,)),
            )
        ]
        findings = []
        for index, (contractor, x1, n1, x2, n2, z) in enumerate(outliers):
            evidence = [row[0] for row in answers[2 * index]]
            named = answers[2 * index + 1]
            cited = (
                "the approvals" if len(evidence) == x1 else f"the first {len(evidence)} approvals"
            )
            findings.append(
                self.finding(
                    f"{scope}|{contractor}",
                    contractor,
                    f"In county {scope}, cases investigated by contractor "
                    f"{named[0][0] if named else ''} ({contractor}) were approved at "
                    f"{x1 / n1:.0%} ({x1} of {n1}), against {x2 / n2:.0%} ({x2} of {n2}) for the "
                    f"county's other investigators: one-sided two-proportion z = {z:.2f} "
                    f"(threshold {config.approval_z}, minimum samples {config.approval_min_cases}"
                    f" and {config.approval_min_others}). Evidence: {cited}.",
                    evidence,
                    contractor_id=contractor,
                    county=scope,
                )
            )
        return findings


RULES = (ApprovalRateOutlier,)
