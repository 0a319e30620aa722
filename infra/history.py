"""An aggregate's history as stored: every event with its global position and provenance."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from psycopg_pool import ConnectionPool

from domain.identifiers import mask_resident_id

#: Payload fields holding resident ID numbers: shown masked.
PERSONAL_ID_FIELDS = frozenset({"applicant_id", "resident_id"})
_HIDDEN = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "provenance"}
)


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def mask_personal(payload: dict[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = {}
    for key, value in payload.items():
        if key in PERSONAL_ID_FIELDS and isinstance(value, str):
            masked[key] = mask_resident_id(value)
        elif isinstance(value, dict):
            masked[key] = mask_personal(value)
        elif isinstance(value, list):
            masked[key] = [mask_personal(v) if isinstance(v, dict) else v for v in value]
        else:
            masked[key] = value
    return masked


def aggregate_history(
    pool: ConnectionPool, mapper: Mapper[Any], aggregate_id: UUID, *, mask: bool = True
) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_version, topic, state FROM relief_events"
            " WHERE originator_id = %s ORDER BY originator_version",
            (aggregate_id,),
        ).fetchall()
    history = []
    for position, version, topic, state in rows:
        event = mapper.to_domain_event(
            Notification(
                id=position,
                originator_id=aggregate_id,
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
        )
        provenance = getattr(event, "provenance", None)
        payload = {k: v for k, v in vars(event).items() if k not in _HIDDEN}
        payload = jsonable(payload)
        history.append(
            {
                "position": position,
                "version": version,
                "type": type(event).__qualname__,
                "recorded_at": getattr(event, "timestamp").isoformat(),  # noqa: B009
                "actor": (
                    {
                        "id": provenance.actor.id,
                        "role": provenance.actor.role.value,
                        "organisation": provenance.actor.organisation,
                    }
                    if provenance
                    else None
                ),
                "reason": provenance.reason if provenance else None,
                "correlation_id": provenance.correlation_id if provenance else None,
                "payload": mask_personal(payload) if mask else payload,
            }
        )
    return history
