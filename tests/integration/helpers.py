"""Helpers for integration tests: writing histories and reading read-model tables."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from infra.ledger import ReliefLedger
from tests.factories import BY_CLERK, resident_id, village

COUNTIES = ("440103", "440104", "440305", "440606")


def write_history(ledger: ReliefLedger, cases: int, *, seed: int = 7) -> list[UUID]:
    """Open ``cases`` cases across counties and programmes and close about a third."""
    rng = random.Random(seed)
    opened = []
    for _ in range(cases):
        case = ledger.open_case(
            programme=rng.choice(("dibao", "tekun", "temporary")),
            applicant_id=resident_id(),
            registered_division=village(rng.choice(COUNTIES)),
            provenance=BY_CLERK,
        )
        opened.append(case.id)
        if rng.random() < 0.35:
            ledger.close_case(
                case.id,
                reason_code="voluntary",
                provenance=BY_CLERK,
            )
    return opened


def table_rows(database_url: str, schema: str, table: str, order_by: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            sql.SQL("SELECT * FROM {}.{} ORDER BY {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.SQL(order_by)
            )
        ).fetchall()


def caseload_rows(database_url: str, schema: str = "read_models") -> list[tuple[Any, ...]]:
    return table_rows(database_url, schema, "caseload", "county, programme")


def expected_caseload(ledger: ReliefLedger, case_ids: list[UUID]) -> list[tuple[str, str, int]]:
    """Caseload computed from the aggregates themselves, independent of any projection."""
    counts: dict[tuple[str, str], int] = {}
    for case_id in case_ids:
        case = ledger.get_case(case_id)
        key = (case.county.code, case.programme.value)
        counts.setdefault(key, 0)
        if case.status.value == "open":
            counts[key] += 1
    return sorted((county, programme, n) for (county, programme), n in counts.items())
