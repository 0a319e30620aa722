"""Reading the alerts (for the HTTP layer to come): filtered, newest first, keyset-paged."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from psycopg import Cursor

COLUMNS = (
    "alert_id, rule, severity, subject_kind, subject_id, contractor_id, county, reason,"
    " evidence, first_seen, last_seen, status"
)


def _page_token(first_seen: dt.datetime, alert_id: UUID) -> str:
    return f"{first_seen.isoformat()}_{alert_id}"


def _parse_token(token: str) -> tuple[dt.datetime, UUID]:
    try:
        moment, _, identifier = token.rpartition("_")
        return dt.datetime.fromisoformat(moment), UUID(identifier)
    except ValueError:
        raise ValueError(f"not a page token: {token!r}") from None


def query_alerts(
    cursor: Cursor[Any],
    *,
    contractor_id: UUID | None = None,
    county: str | None = None,
    rule: str | None = None,
    status: str | None = None,
    limit: int = 100,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Alerts, newest first (by first_seen, then id), and the token of the next page (None on
    the last page). ``county`` is a division-code prefix: "440103", or "4401" for every county
    of the prefecture. ``after`` is a token returned by the previous call; paging by key, so
    alerts raised meanwhile never shift a later page (an alert whose evidence gains an earlier
    event moves to its new first_seen, and may then be seen twice or not at all in one walk)."""
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be from 1 to 1000")
    if status is not None and status not in ("open", "cleared"):
        raise ValueError("status is open or cleared")
    where: list[str] = []
    params: list[Any] = []
    if contractor_id is not None:
        where.append("contractor_id = %s")
        params.append(contractor_id)
    if county:
        where.append("county LIKE %s")
        params.append(county.replace("%", "").replace("_", "") + "%")
    if rule:
        where.append("rule = %s")
        params.append(rule)
    if status:
        where.append("status = %s")
        params.append(status)
    if after:
        where.append("(first_seen, alert_id) < (%s, %s)")
        params.extend(_parse_token(after))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cursor.execute(
        f"SELECT {COLUMNS} FROM read_models.alerts {clause}"
        " ORDER BY first_seen DESC, alert_id DESC LIMIT %s",
        [*params, limit + 1],
    )
    rows = cursor.fetchall()
    names = [name.strip() for name in COLUMNS.split(",")]
    items = [dict(zip(names, row, strict=True)) for row in rows[:limit]]
    more = len(rows) > limit
    token = _page_token(items[-1]["first_seen"], items[-1]["alert_id"]) if more else None
    return items, token
