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
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.contract import Contract
from projections.base import RecordedEvent
from projections.red_flags.engine import Finding, Rule, triggered_by


def _county(purchaser: str | None) -> str | None:
    return purchaser if purchaser is not None and len(purchaser) == 6 else None


class _ContractRule(Rule):
    subject_kind = "contract"

    def contract(self, cursor: Cursor[Any], contract_id: str) -> tuple[Any, ...] | None:
        cursor.execute(
            "SELECT contractor_id, purchaser FROM rf_contract WHERE contract_id = %s",
            (contract_id,),
        )
        return cursor.fetchone()


class BilledAboveValue(_ContractRule):
    name = "billed_above_value"
    severity = "high"
    description = "The invoices of a contract add up to more than the contract's value."

    @triggered_by(Contract.Awarded, Contract.Amended, Contract.Renewed, Contract.Invoiced)
    def money(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        contract = self.contract(cursor, scope)
        cursor.execute(
            "SELECT position, value FROM rf_contract_terms WHERE contract_id = %s"
            " ORDER BY effective_from DESC, position DESC LIMIT 1",
            (scope,),
        )
        terms = cursor.fetchone()
        cursor.execute(
            "SELECT position, amount FROM rf_purchase_fact WHERE subject_id = %s"
            " AND kind = 'invoice' ORDER BY position",
            (scope,),
        )
        invoices = cursor.fetchall()
        if contract is None or terms is None or not invoices:
            return []
        billed = sum((amount for _, amount in invoices), Decimal(0))
        if billed <= terms[1]:
            return []
        return [
            self.finding(
                scope,
                scope,
                f"Contract {scope}: {len(invoices)} invoices add up to {billed}, above the "
                f"contract value {terms[1]} (terms at position {terms[0]}).",
                [terms[0], *(position for position, _ in invoices)],
                contractor_id=contract[0],
                county=_county(contract[1]),
            )
        ]


class ValueRaisedAfterPoorEvaluation(_ContractRule):
    name = "value_raised_after_poor_evaluation"
    severity = "medium"
    description = (
        "A contract's value was raised (amendment or renewal) soon after an evaluation that "
        "scored it poorly."
    )

    @triggered_by(Contract.Awarded, Contract.Amended, Contract.Renewed, Contract.Evaluated)
    def changes(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        return [str(recorded.originator_id)]

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        contract = self.contract(cursor, scope)
        if contract is None:
            return []
        cursor.execute(
            "SELECT position, kind, value, recorded_at FROM rf_contract_terms"
            " WHERE contract_id = %s ORDER BY position",
            (scope,),
        )
        terms = cursor.fetchall()
        cursor.execute(
            "SELECT position, score, recorded_at FROM rf_purchase_fact WHERE subject_id = %s"
            " AND kind = 'evaluation' ORDER BY position",
            (scope,),
        )
        evaluations = cursor.fetchall()
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
                    contractor_id=contract[0],
                    county=_county(contract[1]),
                )
            )
        return findings


class ContractSplitting(Rule):
    name = "contract_splitting"
    severity = "medium"
    subject_kind = "contractor"
    description = (
        "Several contracts from one purchaser to one contractor, each just under a threshold, "
        "awarded within a short window: a purchase split to stay under the threshold."
    )

    @triggered_by(Contract.Awarded)
    def award(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        e = recorded.event
        return [f"{e.contractor_id}|{e.purchaser}"]

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        contractor, purchaser = scope.split("|")
        threshold = self.config.split_threshold
        floor = threshold * (1 - self.config.split_band)
        cursor.execute(
            "SELECT position, contract_id, awarded_on, award_value FROM rf_contract"
            " WHERE contractor_id = %s AND purchaser = %s AND award_value >= %s"
            " AND award_value < %s ORDER BY awarded_on, position",
            (contractor, purchaser, floor, threshold),
        )
        awards = cursor.fetchall()
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
