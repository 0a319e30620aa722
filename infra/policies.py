"""Policy data in the database: staffing band tables, each with an effective date."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.staffing import StaffingPolicy

DEFAULT_POLICY_FILE = (
    Path(__file__).resolve().parents[1] / "policy" / ("staffing-bands-guangdong-2019.json")
)


class StaffingPolicies:
    """The band tables of a database (services/policy.py ``PolicyStore``)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def store(self, document: Mapping[str, object], loaded_by: str) -> StaffingPolicy:
        with self.pool.connection() as conn:
            return store_policy(conn, document, loaded_by)


def store_policy(
    conn: psycopg.Connection[Any], document: Mapping[str, object], loaded_by: str
) -> StaffingPolicy:
    """Validate and store a band table; one per effective date (a newer load replaces it)."""
    policy = StaffingPolicy.parse(document)
    conn.execute(
        "INSERT INTO relief.staffing_policies (effective_from, name, document, loaded_by)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (effective_from) DO UPDATE SET"
        " name = excluded.name, document = excluded.document, loaded_by = excluded.loaded_by,"
        " loaded_at = now()",
        (policy.effective_from, policy.name, Jsonb(dict(document)), loaded_by),
    )
    return policy


def load_policy_file(conn: psycopg.Connection[Any], path: Path, loaded_by: str) -> StaffingPolicy:
    return store_policy(conn, json.loads(path.read_text(encoding="utf-8")), loaded_by)


def ensure_default_policy(conn: psycopg.Connection[Any]) -> None:
    """Load the Guangdong 2019 table on a database that has none yet."""
    row = conn.execute("SELECT count(*) FROM relief.staffing_policies").fetchone()
    if row and row[0] == 0 and DEFAULT_POLICY_FILE.exists():
        load_policy_file(conn, DEFAULT_POLICY_FILE, "relief db init")
