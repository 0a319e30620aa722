"""Contract money: billing above the value, value raised after a poor evaluation, and awards
split to stay under a threshold.

- ``billed_above_value``: the contract's invoices add up to more than its value in force (the
  latest terms). The domain refuses such an invoice; the rule catches what slips past it.
- ``value_raised_after_poor_evaluation``: an amendment or renewal raised the value within
  ``raise_within_days`` after an evaluation (绩效评价) that scored below
  ``poor_evaluation_below``, that evaluation being the latest before the raise: more money
  for a contractor just found performing poorly.
- ``contract_splitting``: at least ``split_min_contracts`` contracts from one purchaser to one
  contractor, each awarded at a value just under ``split_threshold`` (in [threshold ×
  (1 − ``split_band``), threshold)), awarded within ``split_window_days`` of each other: one
  purchase cut into pieces to stay under a procurement or tender threshold.

All three are re-evaluated from the contract's (or the contractor's) whole history whenever a
relevant event arrives, so the order of arrival does not matter.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.contract import Contract
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, ScopedRule, triggered_by


def _county(purchaser: str | None) -> str | None:
    return purchaser if purchaser is not None and len(purchaser) == 6 else None


class BilledAboveValue(Rule):
    name = "billed_above_value"
    severity = "high"
    subject_kind = "contract"
    description = "The invoices of a contract add up to more than the contract's value."

    @triggered_by(Contract.Awarded, Contract.Amended, Contract.Renewed, Contract.Invoiced)
    def money(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [str(r.originator_id) for r in events]

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> list[tuple[Any, ...]]:
        """The contracts billed above their value in force (the latest terms)."""
        cursor.execute(
            "SELECT k.contract_id, k.contractor_id, k.purchaser, t.position, t.value, i.billed,"
            " i.positions FROM rf_contract k"
            " JOIN LATERAL (SELECT position, value FROM rf_contract_terms"
            "  WHERE contract_id = k.contract_id"
            "  ORDER BY effective_from DESC, position DESC LIMIT 1) t ON true"
            " JOIN LATERAL (SELECT sum(amount) AS billed,"
            "  array_agg(position ORDER BY position) AS positions FROM rf_purchase_fact"
            "  WHERE subject_id = k.contract_id AND kind = 'invoice') i ON true"
            " WHERE k.contract_id = ANY(%b::uuid[]) AND i.billed > t.value",
            (list(scopes),),
        )
        return cursor.fetchall()

    def judge(
        self, cursor: Cursor[Any], candidates: list[tuple[Any, ...]], scopes: Sequence[str]
    ) -> list[Finding]:
        findings = []
        for contract_id, contractor, purchaser, terms_at, value, billed, invoices in candidates:
            scope = str(contract_id)
            findings.append(
                self.finding(
                    scope,
                    scope,
                    f"Contract {scope}: {len(invoices)} invoices add up to {billed}, above the "
                    f"contract value {value} (terms at position {terms_at}).",
                    [terms_at, *invoices],
                    contractor_id=contractor,
                    county=_county(purchaser),
                )
            )
        return findings


class ValueRaisedAfterPoorEvaluation(Rule):
    name = "value_raised_after_poor_evaluation"
    severity = "medium"
    subject_kind = "contract"
    description = (
        "A contract's value was raised (amendment or renewal) soon after an evaluation that "
        "scored it poorly."
    )

    @triggered_by(Contract.Awarded, Contract.Amended, Contract.Renewed, Contract.Evaluated)
    def changes(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [str(r.originator_id) for r in events]

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> list[tuple[Any, ...]]:
        """The contracts with a poor evaluation and more than one version of their terms:
        their terms and evaluations in order."""
        cursor.execute(
            "SELECT k.contract_id, k.contractor_id, k.purchaser,"
            " t.positions, t.kinds, t.values, t.times, e.positions, e.scores, e.times"
            " FROM rf_contract k"
            " JOIN LATERAL (SELECT array_agg(position ORDER BY position) AS positions,"
            "  array_agg(kind ORDER BY position) AS kinds,"
            "  array_agg(value ORDER BY position) AS values,"
            "  array_agg(recorded_at ORDER BY position) AS times"
            "  FROM rf_contract_terms WHERE contract_id = k.contract_id) t"
            "  ON cardinality(t.positions) > 1"
            " JOIN LATERAL (SELECT array_agg(position ORDER BY position) AS positions,"
            "  array_agg(score ORDER BY position) AS scores,"
            "  array_agg(recorded_at ORDER BY position) AS times, bool_or(score < %s) AS poor"
            "  FROM rf_purchase_fact WHERE subject_id = k.contract_id AND kind = 'evaluation') e"
            "  ON e.poor"
            " WHERE k.contract_id = ANY(%b::uuid[]) ORDER BY k.contract_id",
            (self.config.poor_evaluation_below, list(scopes)),
        )
        return cursor.fetchall()

    def judge(
        self, cursor: Cursor[Any], candidates: list[tuple[Any, ...]], scopes: Sequence[str]
    ) -> list[Finding]:
        findings = []
        for contract_id, contractor, purchaser, *columns in candidates:
            terms = list(zip(*columns[:4], strict=True))
            evaluations = list(zip(*columns[4:], strict=True))
            findings.extend(
                self.raises(str(contract_id), contractor, purchaser, terms, evaluations)
            )
        return findings

    def raises(
        self,
        scope: str,
        contractor: Any,
        purchaser: str,
        terms: list[tuple[Any, ...]],
        evaluations: list[tuple[Any, ...]],
    ) -> list[Finding]:
        window = dt.timedelta(days=self.config.raise_within_days)
        findings = []
        for before, after in itertools.pairwise(terms):
            if after[2] <= before[2]:
                continue
            latest = [e for e in evaluations if e[0] < after[0]]
            if not latest:
                continue
            evaluation = latest[-1]
            if evaluation[1] >= self.config.poor_evaluation_below:
                continue
            if after[3] - evaluation[2] > window:
                continue
            findings.append(
                self.finding(
                    f"{scope}|{after[0]}",
                    scope,
                    f"Contract {scope}: the value was raised from {before[2]} to {after[2]} "
                    f"({after[1]}, position {after[0]}) {(after[3] - evaluation[2]).days} days "
                    f"after an evaluation scoring {evaluation[1]} (position {evaluation[0]}), "
                    f"below the {self.config.poor_evaluation_below} that counts as poor.",
                    [evaluation[0], after[0]],
                    contractor_id=contractor,
                    county=_county(purchaser),
                )
            )
        return findings


class ContractSplitting(ScopedRule):
    name = "contract_splitting"
    severity = "medium"
    subject_kind = "contractor"
    description = (
        "Several contracts from one purchaser to one contractor, each just under a threshold, "
        "awarded within a short window: a purchase split to stay under the threshold."
    )

    @triggered_by(Contract.Awarded)
    def award(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [f"{r.event.contractor_id}|{r.event.purchaser}" for r in events]

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Awards just under the threshold, per (contractor, purchaser) with enough of them."""
        threshold = self.config.split_threshold
        floor = threshold * (1 - self.config.split_band)
        pairs = [scope.split("|") for scope in scopes]
        cursor.execute(
            "SELECT contractor_id, purchaser, position, contract_id, awarded_on, award_value"
            " FROM (SELECT k.*, count(*) OVER (PARTITION BY k.contractor_id, k.purchaser) AS n"
            "  FROM rf_contract k JOIN unnest(%b::uuid[], %b::text[]) AS s(contractor, purchaser)"
            "  ON k.contractor_id = s.contractor AND k.purchaser = s.purchaser"
            "  WHERE k.award_value >= %s AND k.award_value < %s) a"
            " WHERE n >= %s ORDER BY contractor_id, purchaser, awarded_on, position",
            (
                [contractor for contractor, _ in pairs],
                [purchaser for _, purchaser in pairs],
                floor,
                threshold,
                self.config.split_min_contracts,
            ),
        )
        awards: dict[str, list[tuple[Any, ...]]] = {}
        for contractor, purchaser, *award in cursor.fetchall():
            awards.setdefault(f"{contractor}|{purchaser}", []).append(tuple(award))
        return awards

    def judge_scope(
        self, cursor: Cursor[Any], scope: str, awards: list[tuple[Any, ...]]
    ) -> list[Finding]:
        contractor, purchaser = scope.split("|")
        threshold = self.config.split_threshold
        floor = threshold * (1 - self.config.split_band)
        window = dt.timedelta(days=self.config.split_window_days)
        flagged: set[int] = set()
        last = 0
        for first in range(len(awards)):
            last = max(last, first)
            while last + 1 < len(awards) and awards[last + 1][2] - awards[first][2] <= window:
                last += 1
            if last - first + 1 >= self.config.split_min_contracts:
                flagged.update(range(first, last + 1))
        if not flagged:
            return []
        chosen = [awards[i] for i in sorted(flagged)]
        listed = ", ".join(f"{a[3]} on {a[2].isoformat()}" for a in chosen)
        return [
            self.finding(
                scope,
                contractor,
                f"Purchaser {purchaser} awarded contractor {contractor} {len(chosen)} contracts "
                f"just under the threshold of {threshold} (from {floor}) within "
                f"{self.config.split_window_days} days of each other: {listed}.",
                [a[0] for a in chosen],
                contractor_id=UUID(contractor),
                county=_county(purchaser),
            )
        ]


RULES = (BilledAboveValue, ValueRaisedAfterPoorEvaluation, ContractSplitting)
