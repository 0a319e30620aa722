"""Dashboards' rows kept up to date by the projections, against the same answers recomputed
from scratch, over generated histories (one per seed; more seeds: RELIEF_DASHBOARD_SEEDS=20).

Each history is a small synthetic province with stories in every programme and status
(tools/synthetic/misconduct.py), applied in batches of several sizes."""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from typing import Any

import pytest

from infra.projection_runner import PostgresFeedRunner
from infra.runtime import Runtime
from infra.schema import create_generation
from infra.settings import Settings
from projections.base import Projection
from projections.caseload import LEVELS, CaseloadProjection, query_caseload
from projections.divisions import name_rows
from projections.staffing import StaffingProjection
from projections.staffing_view import (
    current_staffing,
    current_summary,
    current_villages,
    division_row,
    divisions_at,
    staffing_at,
    summary_at,
    villages_at,
)
from tests.conftest import fresh_database
from tests.integration.helpers import scenario_runtime

pytestmark = pytest.mark.integration

SEEDS = range(int(os.environ.get("RELIEF_DASHBOARD_SEEDS", "3")))
BATCH_SIZES = (1, 13, 1000)


@pytest.fixture(params=SEEDS, ids=lambda seed: f"seed{seed}")
def history(
    request: pytest.FixtureRequest, pg_server_url: str, settings: Settings, tmp_path: Any
) -> Any:
    seed = request.param
    runtime = scenario_runtime(
        fresh_database(pg_server_url),
        settings,
        tmp_path / "d",
        households=10 + 5 * seed,
        seed=300 + seed,
    )
    yield runtime
    runtime.close()


def build(runtime: Runtime, projection: type[Projection], batch: int) -> str:
    """A generation of ``projection`` built in batches of ``batch``, serving reads."""
    schema = f"rm_{projection.name}_b{batch}"
    with runtime.pool.connection() as conn, conn.transaction():
        create_generation(conn, projection, schema, replace=True)
    PostgresFeedRunner(
        runtime.pool,
        runtime.ledger.recorder,
        runtime.ledger.mapper,
        projection,
        batch_size=batch,
        schema=schema,
    ).catch_up()
    return schema


def rows(runtime: Runtime, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with runtime.pool.connection() as conn:
        return conn.execute(query, params).fetchall()


def serve(runtime: Runtime, projection: type[Projection], schema: str) -> None:
    """Point the read_models views of ``projection`` at ``schema``."""
    with runtime.pool.connection() as conn, conn.transaction():
        for view in projection.views:
            conn.execute(
                f"CREATE OR REPLACE VIEW read_models.{view} AS SELECT * FROM {schema}.{view}"
            )


def caseload_from_scratch(runtime: Runtime, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Every level's non-empty caseload rows computed from the case index alone: cases
    counted, households counted once per village and added up."""
    per_village: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, set()])
    for village, programme, status, household in rows(
        runtime, f"SELECT village, programme, status, household_id FROM {schema}.case_index"
    ):
        group = per_village[(village, programme, status)]
        group[0] += 1
        group[1].add(household)
    answers = {}
    for level, width in LEVELS.items():
        totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for (village, programme, status), (cases, households) in per_village.items():
            total = totals[(village[:width], programme, status)]
            total[0] += cases
            total[1] += len(households)
        answers[level] = [
            {"division": k[0], "programme": k[1], "status": k[2], "cases": v[0], "households": v[1]}
            for k, v in sorted(totals.items())
        ]
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        return {level: name_rows(cursor, items) for level, items in answers.items()}


def test_caseload_rollups_equal_a_recomputation(history: Runtime) -> None:
    runtime = history
    kept = {}
    for batch in BATCH_SIZES:
        schema = build(runtime, CaseloadProjection, batch)
        kept[batch] = rows(runtime, f"SELECT * FROM {schema}.caseload_rollup ORDER BY 1, 2, 3, 4")
        # The rolled-up rows are their village rows added up, zero rows included.
        assert kept[batch] == rows(
            runtime,
            " UNION ALL ".join(
                f"SELECT '{level}', left(village, {width}) COLLATE \"C\", programme, status,"
                f" sum(cases)::int, sum(households)::int FROM {schema}.caseload GROUP BY 2, 3, 4"
                for level, width in LEVELS.items()
            )
            + " ORDER BY 1, 2, 3, 4",
        )
    assert kept[1] == kept[13] == kept[1000]
    assert any(row[4] for row in kept[1])
    serve(runtime, CaseloadProjection, "rm_caseload_b13")
    expected = caseload_from_scratch(runtime, "rm_caseload_b13")
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        for level in LEVELS:
            items, total = query_caseload(cursor, level=level, limit=1000)
            assert (items, total) == (expected[level], len(expected[level])), level
            # Pages in a stable order, each with the total, put back together.
            paged: list[dict[str, Any]] = []
            for offset in range(0, total + 3, 3):
                page, page_total = query_caseload(cursor, level=level, limit=3, offset=offset)
                assert page_total == total
                paged += page
            assert paged == expected[level]
        # Within a division narrower than the level: that division's part of it.
        village = expected["village"][0]["division"]
        for division in (village[:4], village[:6], village[:9], village):
            items, total = query_caseload(cursor, division=division, level="county", limit=1000)
            wanted: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
            within = division if len(division) > 6 else village[:6]
            for row in expected["village"]:
                if row["division"].startswith(within):
                    w = wanted[(row["programme"], row["status"])]
                    w[0] += row["cases"]
                    w[1] += row["households"]
            got = {
                (i["programme"], i["status"]): [i["cases"], i["households"]]
                for i in items
                if i["division"] == village[:6]
            }
            assert got == dict(wanted), division


def latest_moment(runtime: Runtime, schema: str) -> Any:
    """A moment after every interval of the history began or ended (so 'now' for it)."""
    return rows(
        runtime,
        f"SELECT greatest(max(active_from), max(active_to)) + interval '1 second'"
        f" FROM {schema}.case_activity",
    )[0][0]


def test_current_staffing_equals_the_intervals_now(history: Runtime) -> None:
    runtime = history
    kept = {}
    for batch in BATCH_SIZES:
        schema = build(runtime, StaffingProjection, batch)
        kept[batch] = (
            rows(runtime, f"SELECT * FROM {schema}.staffing_divisions ORDER BY 1"),
            rows(runtime, f"SELECT * FROM {schema}.active_household ORDER BY 1, 2"),
        )
    assert kept[1] == kept[13] == kept[1000]
    schema = "rm_staffing_b13"
    now = latest_moment(runtime, schema)
    # The households kept equal a count of the active intervals at the end of the history.
    assert kept[1][1] == rows(
        runtime,
        "SELECT d.division, a.household_id, count(*)::int FROM"
        f" {schema}.case_activity a, LATERAL (VALUES (left(a.village, 6)),"
        " (left(a.village, 9)), (a.village)) d(division) WHERE a.active_to IS NULL"
        " GROUP BY 1, 2 ORDER BY 1, 2",
    )
    serve(runtime, StaffingProjection, schema)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        seen = [row[0] for row in kept[1][0]]
        assert any(row[2] for row in kept[1][0]), "no relief household in the history"
        for division in (None, seen[0][:4], seen[0][:6], seen[-1][:9], "449999"):
            snapshot = staffing_at(cursor, now, division=division)
            expected = [division_row(d) for d in snapshot.divisions]
            policy, items, total = current_staffing(cursor, now, division=division, limit=1000)
            assert (policy, items, total) == (snapshot.policy, expected, len(expected)), division
            if division is None:  # the history exercises what is compared
                assert any(r["government_staff"] and r["households"] for r in expected)
                assert any(r["shortfall"] for r in expected)
                assert snapshot.summary()["villages_without_coordinator"]
            for level in ("county", "township"):
                _, items, total = current_staffing(
                    cursor, now, division=division, level=level, short_only=True, limit=2
                )
                wanted = [r for r in expected if r["level"] == level and r["shortfall"]]
                assert (items, total) == (wanted[:2], len(wanted))
            assert current_summary(cursor, now, division=division) == snapshot.summary()
            # The villages now, from the kept rows, equal the reference's, whole and paged.
            for status in (None, "under_staffed", "ok", "review"):
                wanted_now = [
                    vars(v) for v in snapshot.villages if status is None or v.status == status
                ]
                assert current_villages(
                    cursor, now, division=division, status=status, limit=1000
                ) == (snapshot.policy, wanted_now[:1000], len(wanted_now)), (division, status)
                _, page, page_total = current_villages(
                    cursor, now, division=division, status=status, limit=3, offset=2
                )
                assert (page, page_total) == (wanted_now[2:5], len(wanted_now))
            # Villages in one statement equal staffing_at's, whole and paged, per status, now
            # and before the history's end.
            for moment in (now, now - dt.timedelta(days=40)):
                at_then = staffing_at(cursor, moment, division=division)
                # ... and so do the counties and townships and the summary then.
                assert summary_at(cursor, moment, division=division) == at_then.summary()
                rows_then = [division_row(d) for d in at_then.divisions]
                assert divisions_at(cursor, moment, division=division, limit=1000) == (
                    at_then.policy,
                    rows_then,
                    len(rows_then),
                )
                for level in ("county", "township"):
                    wanted = [r for r in rows_then if r["level"] == level and r["shortfall"]]
                    _, page, page_total = divisions_at(
                        cursor,
                        moment,
                        division=division,
                        level=level,
                        short_only=True,
                        limit=2,
                        offset=1,
                    )
                    assert (page, page_total) == (wanted[1:3], len(wanted))
                for status in (None, "under_staffed", "ok", "review"):
                    wanted_villages = [
                        vars(v) for v in at_then.villages if status is None or v.status == status
                    ]
                    _, items, total = villages_at(
                        cursor, moment, division=division, status=status, limit=1000
                    )
                    assert (items, total) == (wanted_villages[:1000], len(wanted_villages))
                    _, page, page_total = villages_at(
                        cursor, moment, division=division, status=status, limit=3, offset=2
                    )
                    assert (page, page_total) == (wanted_villages[2:5], len(wanted_villages))
