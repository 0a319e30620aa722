"""The misconduct scenario: an honest province with every kind of red-flag misconduct injected
in at least five variants (each with an honest near-miss twin), projected by the real red-flags
runner; every variant a rule is expected to find must be found, no twin flagged, and honest
activity must raise no alert. ``pytest -s`` prints the per-rule table."""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path
from typing import Any

import pytest

from infra.runtime import Runtime
from infra.settings import Settings
from projections.red_flags.projection import ALL_RULES
from tools.synthetic.misconduct import (
    NOT_INJECTABLE,
    Injected,
    build_scenario,
    false_positives,
    honest_alert_rate,
    honest_false_alerts,
    open_alerts,
    overall,
    project_scenario,
    scenario_report,
    score,
)
from tools.synthetic.province import SimulatedClock

pytestmark = pytest.mark.integration

#: A few hundred households (override to measure other sizes and seeds).
HOUSEHOLDS = int(os.environ.get("RELIEF_SCENARIO_HOUSEHOLDS", "300"))
SEED = int(os.environ.get("RELIEF_SCENARIO_SEED", "7"))
#: Bound on honest activity's alerts (false positives), per honest household. Measured: none
#: at 300 households (seed 7) and at 2,000 (seed 5); the statistical rules may flag an honest
#: village or investigator by chance, rarely.
FALSE_POSITIVE_BOUND = 0.01


def scenario(runtime: Runtime, households: int, seed: int) -> Injected:
    """Build the scenario and project it to the end with the scenario's configuration."""
    clock = SimulatedClock(runtime.services.clock.today())
    bulk = runtime.bulk(clock)
    try:
        injected = build_scenario(bulk, clock, households=households, seed=seed)
    finally:
        bulk.close()
    project_scenario(runtime)
    return injected


def test_every_injected_pattern_is_found_and_honest_activity_raises_few_alerts(
    runtime: Runtime,
) -> None:
    started = time.monotonic()
    injected = scenario(runtime, HOUSEHOLDS, SEED)
    built = time.monotonic() - started
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        scores = score(cursor, injected)
        unexpected = false_positives(cursor, injected)
        honest = honest_false_alerts(cursor, injected)
    print(f"\nscenario built and projected in {built:.1f}s\n")
    print(scenario_report(scores, injected, len(honest)))
    for rule, subject, reason in unexpected:
        print(f"  false positive {rule} on {subject}: {reason[:160]}")

    rate = honest_alert_rate(scores, injected)
    print(f"honest alerts: {rate:.3f} per honest household")

    # Every injected pattern is found.
    assert list(scores) == [rule.name for rule in ALL_RULES]
    not_injected = {rule for rule, s in scores.items() if s["injected"] == 0}
    assert not_injected == set(NOT_INJECTABLE)
    for rule, s in scores.items():
        if s["injected"]:
            assert s["recall"] == 1.0, (rule, s)
    # At least five variants of every injectable rule, each with its twin.
    assert {r: (s["injected"] >= 5, s["near_misses"] >= 5) for r, s in scores.items()} == {
        r: (r not in NOT_INJECTABLE,) * 2 for r in scores
    }
    total = overall(scores)
    assert (total["recall"], total["near_misses_flagged"]) == (1.0, 0), total
    # Honest households raise no alert at all; the known gaps stay known (a gap found would
    # mean the README's "not caught" column is out of date).
    assert honest == []
    assert total["gaps"] >= 1 and total["gaps_found"] == 0, total
    # Honest activity raises few alerts, and no near miss of an injected variant is flagged.
    assert rate <= FALSE_POSITIVE_BOUND, unexpected
    assert {rule: s["near_misses_flagged"] for rule, s in scores.items() if s["near_misses"]} == {
        rule: 0 for rule, s in scores.items() if s["near_misses"]
    }


def test_the_same_seed_gives_the_same_injections_and_alerts(
    pg_server_url: str, settings: Settings, tmp_path: Path
) -> None:
    from tests.conftest import fresh_database

    outcomes: list[tuple[Any, ...]] = []
    for n in range(2):  # two databases, two identity keys: only ids may differ
        url = fresh_database(pg_server_url)
        runtime = Runtime.open(settings.with_(database_url=url, data_dir=tmp_path / f"d{n}"))
        try:
            injected = scenario(runtime, 120, seed=3)
            with runtime.pool.connection() as conn, conn.cursor() as cursor:
                alerts = collections.Counter(rule for rule, _, _ in open_alerts(cursor))
                scores = score(cursor, injected)
            outcomes.append((injected.labels(), injected.honest_households, alerts, scores))
        finally:
            runtime.close()
    assert outcomes[0] == outcomes[1]
    labels, _, alerts, _ = outcomes[0]
    assert set(labels) == {rule.name for rule in ALL_RULES} - set(NOT_INJECTABLE)
    assert sum(alerts.values()) > len(labels)
