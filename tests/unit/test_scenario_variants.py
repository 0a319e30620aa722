"""The scenario's variant table (tools/synthetic/variants.py): every rule the ledger's commands
can reach has at least five variants, each with an honest near-miss twin, and the scoring reads
recall over the variants the rules are expected to find."""

from __future__ import annotations

import collections

from projections.red_flags.projection import ALL_RULES
from tools.synthetic.misconduct import NOT_INJECTABLE, Injected, overall, scenario_report
from tools.synthetic.variants import VARIANTS, variants_per_rule

INJECTABLE = {rule.name for rule in ALL_RULES} - set(NOT_INJECTABLE)


def test_every_injectable_rule_has_five_variants_each_with_a_twin() -> None:
    counts = variants_per_rule()
    assert set(counts) == INJECTABLE
    short = {rule: n for rule, n in counts.items() if n < 5}
    assert short == {}
    for variant in VARIANTS:
        assert variant.name and variant.twin and variant.name != variant.twin, variant
        assert variant.rule in INJECTABLE
        assert set(variant.also) <= INJECTABLE


def test_variant_names_are_distinct_within_a_rule() -> None:
    names = collections.Counter((v.rule, v.name) for v in VARIANTS)
    assert [key for key, n in names.items() if n > 1] == []


def test_billed_above_value_is_said_to_be_out_of_reach() -> None:
    assert "billed_above_value" in NOT_INJECTABLE
    assert all(v.rule != "billed_above_value" for v in VARIANTS)


def test_a_known_gap_is_scored_apart_from_recall() -> None:
    injected = Injected(seed=1, households=1, honest_households=1, counties=("440103",))
    injected.add("overlapping_records", "a", "caught")
    injected.add("overlapping_records", "b", "a gap", expected=False)
    injected.twin("overlapping_records", "c", "twin")
    assert injected.expected("overlapping_records") == {"a"}
    assert injected.gaps("overlapping_records") == {"b"}
    scores = {
        "overlapping_records": {
            "injected": 1,
            "detected": 1,
            "recall": 1.0,
            "found": 2,
            "true_positives": 1,
            "false_positives": 1,
            "precision": 0.5,
            "near_misses": 1,
            "near_misses_flagged": 1,
            "gaps": 1,
            "gaps_found": 0,
        }
    }
    total = overall(scores)
    assert (total["recall"], total["precision"], total["near_misses_flagged"]) == (1.0, 0.5, 1)
    report = scenario_report(scores, injected)
    assert "| overlapping_records | 1 | 1 | 1.00 | 2 | 0.50 | 1 | 1 | 1 (0) |" in report
    assert "1 of 1 near-miss twins flagged" in report
    assert "False alerts on honest activity (subjects neither injected nor a twin): 0" in report
