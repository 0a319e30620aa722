"""Stored events as CloudEvents 1.0, JSON structured mode (the whole event is the message value).

Structured mode keeps each Kafka record self-describing for any consumer; the message key is the
aggregate id, so one case's events land on one partition in order. Extensions:
``position`` (global position in the log), ``aggregateversion`` and ``relayepoch`` (incremented
whenever the relay republishes the log to a broker that lost it).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


@dataclass(frozen=True)
class RelayedEvent:
    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes
    epoch: int

    @property
    def id(self) -> str:
        return f"{self.originator_id}/{self.originator_version}"


def encode(event: RelayedEvent, *, source: str) -> bytes:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": source,
        "type": event.topic,
        "subject": str(event.originator_id),
        "position": event.position,
        "aggregateversion": event.originator_version,
        "relayepoch": event.epoch,
    }
    try:
        data = json.loads(event.state)
    except (UnicodeDecodeError, ValueError):
        envelope["datacontenttype"] = "application/octet-stream"
        envelope["data_base64"] = base64.b64encode(event.state).decode("ascii")
    else:
        envelope["datacontenttype"] = "application/json"
        envelope["data"] = data
        stamp = data.get("timestamp") if isinstance(data, dict) else None
        if isinstance(stamp, dict) and isinstance(stamp.get("_data_"), str):
            envelope["time"] = stamp["_data_"]
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class MalformedCloudEvent(ValueError):
    pass


def decode(value: bytes) -> RelayedEvent:
    try:
        envelope = json.loads(value)
        if envelope.get("specversion") != "1.0":
            raise MalformedCloudEvent(f"unsupported specversion {envelope.get('specversion')!r}")
        if "data_base64" in envelope:
            state = base64.b64decode(envelope["data_base64"])
        else:
            state = json.dumps(envelope["data"], separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8"
            )
        return RelayedEvent(
            position=int(envelope["position"]),
            originator_id=UUID(envelope["subject"]),
            originator_version=int(envelope["aggregateversion"]),
            topic=str(envelope["type"]),
            state=state,
            epoch=int(envelope.get("relayepoch", 1)),
        )
    except MalformedCloudEvent:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedCloudEvent(f"not a relief-ledger CloudEvent: {error}") from error
