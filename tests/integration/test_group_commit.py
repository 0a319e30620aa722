"""Group commit (RELIEF_GROUP_COMMIT=1): concurrent saves share transactions, each in its own
savepoint; a version conflict fails only its own save; positions commit in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError

from domain.commands.cases import ReviewCase
from infra.runtime import Runtime
from infra.settings import Settings
from tests.factories import officer
from tests.scenario import application, approve


@pytest.fixture()
def grouped(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.open(settings.with_(group_commit=True))
    yield runtime
    runtime.close()


def review(runtime: Runtime, case_id: object, county: str) -> object:
    return runtime.services.cases.review_case(
        ReviewCase(
            case_id=case_id,  # type: ignore[arg-type]
            outcome="continue",
            notes="grouped",
            provenance=officer(county),
        )
    )


def test_concurrent_saves_all_land_and_a_conflict_fails_only_its_own(grouped: Runtime) -> None:
    runtime = grouped
    cases = []
    for _ in range(7):
        case = application(runtime)
        approve(runtime, runtime.ledger.get_case(case.id))
        cases.append(runtime.ledger.get_case(case.id))
    contested, cases = cases[0], cases[1:]
    start = threading.Barrier(len(cases) + 2)
    outcomes: dict[str, object] = {}

    def distinct(n: int) -> None:
        start.wait()
        for k in range(5):
            outcomes[f"{n}-{k}"] = review(runtime, cases[n].id, cases[n].county.code)

    # two writers of the same case at the same version: one of them must fail, alone
    racing = runtime.ledger.get_case(contested.id), runtime.ledger.get_case(contested.id)

    def race(n: int) -> None:
        mine = racing[n]
        mine.review(
            outcome="continue",
            notes="race",
            new_monthly_amount=None,
            effective_from=None,
            provenance=officer(mine.county.code),
        )
        start.wait()
        try:
            runtime.ledger.save(mine)
            outcomes[f"race-{n}"] = "saved"
        except RecordConflictError:
            outcomes[f"race-{n}"] = "conflict"

    threads = [threading.Thread(target=distinct, args=(n,)) for n in range(len(cases))]
    threads += [threading.Thread(target=race, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(str(outcomes[f"race-{n}"]) for n in range(2)) == ["conflict", "saved"]
    assert all(f"{n}-{k}" in outcomes for n in range(len(cases)) for k in range(5))
    with psycopg.connect(runtime.database_url) as conn:
        for case in (*cases, contested):
            row = conn.execute(
                "SELECT count(*), max(originator_version) FROM relief_events"
                " WHERE originator_id = %s",
                (case.id,),
            ).fetchone()
            assert row is not None
            expected = case.version + (1 if case is contested else 5)
            assert (row[0], row[1]) == (expected, expected)
        positions = [
            r[0]
            for r in conn.execute(
                "SELECT notification_id FROM relief_events ORDER BY notification_id"
            ).fetchall()
        ]
        assert positions == sorted(set(positions))
