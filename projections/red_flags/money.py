"""Contract money: billing above the value, value raised after a poor evaluation, and awards
split to stay under a threshold.

- ``billed_above_value``: the contract's invoices add up to more than its value in force (the
  latest terms). The domain refuses such an invoice; the rule catches what slips past it.
- ``value_raised_after_poor_evaluation``: an amendment or renewal raised the value within
  ``raise_within_days`` after an evaluation (绩效评价) that scored below
  ``poor_evaluation_below``, that evaluation being the latest before the raise: more money
  for a contractor just found performing poorly.
- ``contract_splitting``: at least ``split_min_contracts`` contracts to one contractor for one
  work item, from the purchasers of one prefecture (its counties, the prefecture itself, and the
  province's own purchasers), each awarded at a value just under its purchaser's tender limit
  (in [limit × (1 − ``split_band``), limit)), awarded within ``split_window_days`` of each
  other and with terms that share at least one day: one purchase cut into pieces to stay under
  the limit. Limits come from ``tender_limits`` (per purchaser or prefix, with their source),
  else ``split_threshold``. Awards of two prefectures are not pooled: they are different
  governments' budgets. Scope: the contractor; key "contractor|prefecture" ("44" when only
  the province bought).

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
from projections.red_flags.engine import (
    Finding,
    Rule,
    ScopedRule,
    majority,
    originators,
    triggered_by,
)
from projections.sets import Read, Step, read_rows


def _county(purchaser: str | None) -> str | None:
    return purchaser if purchaser is not None and len(purchaser) == 6 else None


class BilledAboveValue(Rule):
    name = "billed_above_value"
    severity = "high"
    subject_kind = "contract"
    description = "The invoices of a contract add up to more than the contract's value."

    @triggered_by(Contract.Awarded, Contract.Amended, Contract.Renewed, Contract.Invoiced)
    def money(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return originators(events)

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> Step[list[tuple[Any, ...]]]:
        """The contracts billed above their value in force (the latest terms)."""
        return (
            yield from read_rows(
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
        )

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
        return originators(events)

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> Step[list[tuple[Any, ...]]]:
        """The contracts with a poor evaluation and more than one version of their terms:
        their terms and evaluations in order."""
        return (
            yield from read_rows(
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
                "  FROM rf_purchase_fact WHERE subject_id = k.contract_id"
                "  AND kind = 'evaluation') e ON e.poor"
                " WHERE k.contract_id = ANY(%b::uuid[]) ORDER BY k.contract_id",
                (self.config.poor_evaluation_below, list(scopes)),
            )
        )

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
        "Several contracts to one contractor for one work item, from the purchasers of one "
        "prefecture (and the province), each just under its purchaser's tender limit, awarded "
        "within a short window with overlapping terms: a purchase split to stay under the limit."
    )

    @triggered_by(Contract.Awarded, reads=("contractor_id",))
    def award(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [str(r.event.contractor_id) for r in events]

    def _just_under(self, purchaser: str, value: Any) -> bool:
        limit, _ = self.config.limit_for(purchaser)
        return bool(limit * (1 - self.config.split_band) <= value < limit)

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> Step[dict[str, list[tuple[Any, ...]]]]:
        """Awards just under their purchaser's limit, per contractor with enough of them:
        (position, contract, awarded on, value, purchaser, work items, term start, end)."""
        rows = yield Read(
            "SELECT k.contractor_id, k.position, k.contract_id, k.awarded_on, k.award_value,"
            " k.purchaser, t.work_items, t.term_start, t.term_end"
            " FROM rf_contract k JOIN rf_contract_terms t"
            " ON t.contract_id = k.contract_id AND t.kind = 'awarded'"
            " WHERE k.contractor_id = ANY(%b::text[]::uuid[])"
            " ORDER BY k.contractor_id, k.awarded_on, k.position",
            (list(scopes),),
        )
        awards: dict[str, list[tuple[Any, ...]]] = {}
        for contractor, *award in rows:
            if self._just_under(award[4], award[3]):
                awards.setdefault(str(contractor), []).append(tuple(award))
        return {
            scope: found
            for scope, found in awards.items()
            if len(found) >= self.config.split_min_contracts
        }

    def _runs(self, awards: list[tuple[Any, ...]]) -> set[int]:
        """Indexes of awards in a run of enough awards within the window whose terms share
        a day (``awards`` in award order)."""
        window = dt.timedelta(days=self.config.split_window_days)
        flagged: set[int] = set()
        for first in range(len(awards)):
            start, end = awards[first][6], awards[first][7]
            run = [first]
            for later in range(first + 1, len(awards)):
                if awards[later][2] - awards[first][2] > window:
                    break
                start, end = max(start, awards[later][6]), min(end, awards[later][7])
                if start > end:
                    break
                run.append(later)
            if len(run) >= self.config.split_min_contracts:
                flagged.update(run)
        return flagged

    def judge_scope(
        self, cursor: Cursor[Any], scope: str, awards: list[tuple[Any, ...]]
    ) -> list[Finding]:
        prefectures = sorted({a[4][:4] for a in awards if len(a[4]) > 2}) or ["44"]
        findings = []
        for prefecture in prefectures:
            group = [a for a in awards if a[4].startswith(prefecture) or len(a[4]) == 2]
            chosen: set[int] = set()
            for item in sorted({i for a in group for i in a[5]}):
                with_item = [a for a in group if item in a[5]]
                chosen.update(with_item[i][0] for i in self._runs(with_item))
            if not chosen:
                continue
            flagged = [a for a in group if a[0] in chosen]
            shared = sorted(set.intersection(*(set(a[5]) for a in flagged)))
            limits = {}
            for a in flagged:
                limit, source = self.config.limit_for(a[4])
                limits[a[4]] = f"{a[4]}: limit {limit} ({source})"
            listed = ", ".join(
                f"{a[1]} from {a[4]} on {a[2].isoformat()} at {a[3]}" for a in flagged
            )
            purchasers = sorted({a[4] for a in flagged})
            findings.append(
                self.finding(
                    f"{scope}|{prefecture}",
                    scope,
                    f"{len(flagged)} contracts to contractor {scope} "
                    f"{'for ' + ', '.join(shared) + ' ' if shared else ''}from "
                    f"{'purchaser' if len(purchasers) == 1 else 'purchasers'} "
                    f"{', '.join(purchasers)}, each just under its tender limit "
                    f"({'; '.join(limits[p] for p in purchasers)}; band {self.config.split_band}),"
                    f" awarded within {self.config.split_window_days} days of each other with "
                    f"overlapping terms: {listed}.",
                    [a[0] for a in flagged],
                    contractor_id=UUID(scope),
                    county=majority([_county(a[4]) for a in flagged]),
                )
            )
        return findings


RULES = (BilledAboveValue, ValueRaisedAfterPoorEvaluation, ContractSplitting)
