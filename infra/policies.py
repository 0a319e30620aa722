"""Band tables from files: the shipped Guangdong table, a file given to ``relief policy load``,
and the tables a database of the version before kept in ``relief.staffing_policies``.

A table is loaded as an event through the policy service (services/policy.py); nothing here
writes a table anywhere else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

DEFAULT_POLICY_FILE = (
    Path(__file__).resolve().parents[1] / "policy" / ("staffing-bands-guangdong-2019.json")
)

#: Where the version before kept band tables (upserted, one per effective date).
LEGACY_TABLE = "relief.staffing_policies"


class PolicyFileError(ValueError):
    """A band-table file that cannot be read as a JSON object."""


def read_policy_file(path: Path) -> dict[str, object]:
    """The band table a file holds, as a document for ``LoadStaffingPolicy``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyFileError(f"{path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PolicyFileError(f"{path}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise PolicyFileError(f"{path}: a band table is a JSON object")
    return document


def legacy_tables(conn: psycopg.Connection[Any]) -> list[dict[str, object]]:
    """The tables a database of the version before kept, by effective date, each with the
    source it was loaded from stated (who loaded it and when): adopted as events on the first
    start of this version, so its past answers stay as they were."""
    row = conn.execute("SELECT to_regclass(%s)", (LEGACY_TABLE,)).fetchone()
    if row is None or row[0] is None:
        return []
    rows = conn.execute(
        f"SELECT document, loaded_by, loaded_at FROM {LEGACY_TABLE} ORDER BY effective_from"
    ).fetchall()
    return [
        {
            **document,
            "source": document.get("source")
            or f"{LEGACY_TABLE}, loaded by {loaded_by} at {loaded_at.isoformat()}",
        }
        for document, loaded_by, loaded_at in rows
    ]
