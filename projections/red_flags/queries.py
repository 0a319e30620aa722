"""Reading the alerts with their reviews: filtered, newest first, keyset-paged; and the facts
the contractor dossier reads (services recorded under a contractor's contracts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from psycopg import Cursor

from projections.red_flags.reviews import REVIEW_STATUSES

COLUMNS = (
    "alert_id, rule, severity, subject_kind, subject_id, contractor_id, county, reason,"
    " evidence, first_seen, last_seen, status"
)
#: The reviewer's side (reviews.py); an alert without a review row reads as unreviewed.
#: The projection's tables a list of alerts reads (answers' tags follow their writes alone).
ALERT_TABLES = ("alerts", "alert_reviews")
REVIEW_COLUMNS = (
    "review_status, review_reason, investigation_id, investigation_ids, reviewed_position,"
    " reviewed_at, reviewed_by"
)
_SELECT = (
    "SELECT "
    + ", ".join(f"a.{name.strip()}" for name in COLUMNS.split(","))
    + ", coalesce(r.review_status, 'unreviewed'), r.review_reason, r.investigation_id,"
    " coalesce(r.investigation_ids, '{}'::uuid[]), r.reviewed_position, r.reviewed_at,"
    " r.reviewed_by FROM read_models.alerts a"
    " LEFT JOIN read_models.alert_reviews r ON r.alert_id = a.alert_id"
)
_NAMES = [name.strip() for name in (COLUMNS + "," + REVIEW_COLUMNS).split(",")]


def _page_token(first_seen: dt.datetime, alert_id: UUID) -> str:
    return f"{first_seen.isoformat()}_{alert_id}"


def _parse_token(token: str) -> tuple[dt.datetime, UUID]:
    try:
        moment, _, identifier = token.rpartition("_")
        parsed = dt.datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError
        return parsed, UUID(identifier)
    except ValueError:
        raise ValueError(f"not a page token: {token!r}") from None


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(_NAMES, row, strict=True))
    # Evidence newer than the verdict: the alert was refreshed after it was judged.
    position = item["reviewed_position"]
    item["new_evidence_since_review"] = position is not None and any(
        p > position for p in item["evidence"]
    )
    return item


def _scope_clause(scope: str | None, unplaced: bool) -> tuple[list[str], list[Any]]:
    """Alerts of counties under ``scope``; alerts without a county only when ``unplaced``."""
    if scope is None:
        return [], []
    placed = "a.county LIKE %s"
    prefix = scope.replace("%", "").replace("_", "") + "%"
    if unplaced:
        return [f"({placed} OR a.county IS NULL)"], [prefix]
    return [placed], [prefix]


def query_alerts(
    cursor: Cursor[Any],
    *,
    contractor_id: UUID | None = None,
    county: str | None = None,
    rule: str | None = None,
    status: str | None = None,
    review_status: str | None = None,
    subject_kind: str | None = None,
    subject_id: str | None = None,
    scope: str | None = None,
    unplaced: bool = True,
    limit: int = 100,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Alerts, newest first (by first_seen, then id), and the token of the next page (None on
    the last page). ``county`` is a division-code prefix: "440103", or "4401" for every county
    of the prefecture. ``scope`` is the reader's division-code prefix: alerts of other counties
    are never returned, nor alerts without a county unless ``unplaced``. ``after`` is a token
    returned by the previous call; paging by key, so alerts raised meanwhile never shift a later
    page (an alert whose evidence gains an earlier event moves to its new first_seen, and may
    then be seen twice or not at all in one walk)."""
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be from 1 to 1000")
    if status is not None and status not in ("open", "cleared"):
        raise ValueError("status is open or cleared")
    if review_status is not None and review_status not in REVIEW_STATUSES:
        raise ValueError(f"review status is one of {', '.join(REVIEW_STATUSES)}")
    where, params = _scope_clause(scope, unplaced)
    if contractor_id is not None:
        where.append("a.contractor_id = %s")
        params.append(contractor_id)
    if county:
        where.append("a.county LIKE %s")
        params.append(county.replace("%", "").replace("_", "") + "%")
    if rule:
        where.append("a.rule = %s")
        params.append(rule)
    if status:
        where.append("a.status = %s")
        params.append(status)
    if review_status:
        where.append("coalesce(r.review_status, 'unreviewed') = %s")
        params.append(review_status)
    if subject_kind:
        where.append("a.subject_kind = %s")
        params.append(subject_kind)
    if subject_id:
        where.append("a.subject_id = %s")
        params.append(subject_id)
    if after:
        where.append("(a.first_seen, a.alert_id) < (%s, %s)")
        params.extend(_parse_token(after))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    cursor.execute(
        f"{_SELECT}{clause} ORDER BY a.first_seen DESC, a.alert_id DESC LIMIT %s",
        [*params, limit + 1],
    )
    rows = cursor.fetchall()
    items = [_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    token = _page_token(items[-1]["first_seen"], items[-1]["alert_id"]) if more else None
    return items, token


def alerts_by_id(cursor: Cursor[Any], alert_ids: Iterable[UUID]) -> dict[UUID, dict[str, Any]]:
    """The alerts with these ids (with their reviews); missing ids are left out."""
    ids = list(alert_ids)
    if not ids:
        return {}
    cursor.execute(f"{_SELECT} WHERE a.alert_id = ANY(%s)", (ids,))
    return {item["alert_id"]: item for item in (_row(row) for row in cursor.fetchall())}


def investigations_citing(cursor: Cursor[Any], contractor_id: UUID) -> list[UUID]:
    """Investigations that cited an alert about this contractor (any subject), by id."""
    cursor.execute(
        "SELECT DISTINCT i FROM read_models.alerts a"
        " JOIN read_models.alert_reviews r ON r.alert_id = a.alert_id,"
        " unnest(r.investigation_ids) AS i"
        " WHERE a.contractor_id = %s OR (a.subject_kind = 'contractor' AND a.subject_id = %s)"
        " ORDER BY i",
        (contractor_id, str(contractor_id)),
    )
    return [row[0] for row in cursor.fetchall()]


def contractor_services(
    cursor: Cursor[Any], contractor_id: UUID, *, limit: int = 1000
) -> tuple[list[dict[str, Any]], int]:
    """Services recorded under the contractor's contracts (newest first, at most ``limit``)
    and how many there are: position, case, contract, item, when, where, by whom, whether a
    later correction voided it."""
    cursor.execute(
        "SELECT count(*) FROM read_models.rf_record WHERE contractor_id = %s AND kind = 'service'",
        (contractor_id,),
    )
    row = cursor.fetchone()
    total = int(row[0]) if row else 0
    cursor.execute(
        "SELECT r.position, r.recorded_at, r.case_id, r.contract_id, r.work_item, r.starts,"
        " r.ends, r.place, r.actor, r.void_position"
        " FROM read_models.rf_record r"
        " WHERE r.contractor_id = %s AND r.kind = 'service'"
        " ORDER BY r.position DESC LIMIT %s",
        (contractor_id, limit),
    )
    names = (
        "position",
        "recorded_at",
        "case_id",
        "contract_id",
        "work_item",
        "start",
        "end",
        "place",
        "staff",
        "voided_at_position",
    )
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()], total
