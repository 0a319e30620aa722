"""The reviewer's side of every alert (复核状态), fed by the investigations' events.

The engine's ``status`` (open / cleared) says whether the rule still finds what it found; the
review status says what people made of it: ``unreviewed`` until an investigation cites the
alert, then ``under_review``, then ``confirmed`` or ``dismissed`` (with the reason) as the
investigation's findings judge it. One row per alert, keyed by the alert id (stable across
rebuilds): the engine adds the row when it first raises the alert, an investigation citing an
alert the engine has not raised yet (another feed's order) adds it too.

The latest word wins, by global position: an alert cited again by a newer investigation is
under review again, and a verdict is never overwritten by an older event, so a replay, a
rebuild and the Kafka feed's other interleaving of aggregates agree. ``investigation_ids``
lists every investigation that ever cited the alert (the contractor dossier reads it).
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.investigation import Investigation
from projections.base import RecordedEvent
from projections.payloads import cited_alert_ids, verdicts_of

REVIEW_STATUSES = ("unreviewed", "under_review", "confirmed", "dismissed")

REVIEWS_DDL = (
    f"""CREATE TABLE alert_reviews (
        alert_id uuid PRIMARY KEY,
        review_status text NOT NULL DEFAULT 'unreviewed'
            CHECK (review_status IN {REVIEW_STATUSES}),
        review_reason text,
        investigation_id uuid,
        investigation_ids uuid[] NOT NULL DEFAULT '{{}}',
        reviewed_position bigint,
        reviewed_at timestamptz,
        reviewed_by text
    )""",
    "CREATE INDEX alert_reviews_status ON alert_reviews (review_status)",
    "CREATE INDEX alert_reviews_investigations ON alert_reviews USING gin (investigation_ids)",
)

#: Events this read model is fed by.
REVIEW_EVENTS: tuple[type, ...] = (Investigation.Opened, Investigation.FindingsRecorded)

_UPSERT = """
INSERT INTO alert_reviews AS r (alert_id, review_status, review_reason, investigation_id,
    investigation_ids, reviewed_position, reviewed_at, reviewed_by)
VALUES (%(alert)s, %(status)s, %(reason)s, %(investigation)s, ARRAY[%(investigation)s]::uuid[],
    %(position)s, %(at)s, %(by)s)
ON CONFLICT (alert_id) DO UPDATE SET
    review_status = CASE WHEN r.reviewed_position IS NULL OR r.reviewed_position < %(position)s
        THEN excluded.review_status ELSE r.review_status END,
    review_reason = CASE WHEN r.reviewed_position IS NULL OR r.reviewed_position < %(position)s
        THEN excluded.review_reason ELSE r.review_reason END,
    investigation_id = CASE WHEN r.reviewed_position IS NULL OR r.reviewed_position < %(position)s
        THEN excluded.investigation_id ELSE r.investigation_id END,
    reviewed_at = CASE WHEN r.reviewed_position IS NULL OR r.reviewed_position < %(position)s
        THEN excluded.reviewed_at ELSE r.reviewed_at END,
    reviewed_by = CASE WHEN r.reviewed_position IS NULL OR r.reviewed_position < %(position)s
        THEN excluded.reviewed_by ELSE r.reviewed_by END,
    reviewed_position = GREATEST(r.reviewed_position, excluded.reviewed_position),
    investigation_ids = CASE WHEN %(investigation)s = ANY(r.investigation_ids)
        THEN r.investigation_ids
        ELSE (SELECT array_agg(i ORDER BY i) FROM unnest(
            array_append(r.investigation_ids, %(investigation)s::uuid)) AS i) END
"""


def _review(
    cursor: Cursor[Any],
    recorded: RecordedEvent,
    alert: str,
    status: str,
    reason: str | None,
) -> None:
    cursor.execute(
        _UPSERT,
        {
            "alert": alert,
            "status": status,
            "reason": reason,
            "investigation": recorded.originator_id,
            "position": recorded.position,
            "at": recorded.timestamp,
            "by": recorded.event.provenance.actor.id,
        },
    )


def apply_review(cursor: Cursor[Any], recorded: RecordedEvent) -> None:
    """An investigation cited alerts (under review) or judged them (confirmed, dismissed)."""
    event = recorded.event
    if isinstance(event, Investigation.Opened):
        for alert in cited_alert_ids(event):
            _review(cursor, recorded, alert, "under_review", None)
    elif isinstance(event, Investigation.FindingsRecorded):
        for alert, verdict, reason in verdicts_of(event):
            _review(cursor, recorded, alert, verdict, reason)
