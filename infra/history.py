"""An aggregate's history as stored: every event with its global position (and, for readers,
as projections/history.py shows it)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from psycopg_pool import ConnectionPool

from projections.base import RecordedEvent
from projections.history import history_item


def stored_history(
    pool: ConnectionPool, mapper: Mapper[Any], aggregate_id: UUID
) -> list[RecordedEvent]:
    """Every event of the aggregate, in version order, with its position in the log."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_version, topic, state FROM relief_events"
            " WHERE originator_id = %s ORDER BY originator_version",
            (aggregate_id,),
        ).fetchall()
    return [
        RecordedEvent(
            position=position,
            originator_id=aggregate_id,
            originator_version=version,
            topic=topic,
            # A Notification carries the position: the seal of an event is judged by its place
            # in the log (infra/sealing.py).
            event=mapper.to_domain_event(
                Notification(
                    id=position,
                    originator_id=aggregate_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
            ),
        )
        for position, version, topic, state in rows
    ]


def aggregate_history(
    pool: ConnectionPool, mapper: Mapper[Any], aggregate_id: UUID, *, mask: bool = True
) -> list[dict[str, Any]]:
    """The history as readers see it: position, type, time, actor, reason, payload."""
    return [history_item(r, mask=mask) for r in stored_history(pool, mapper, aggregate_id)]
