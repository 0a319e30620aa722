"""Stored events as CloudEvents 1.0, JSON structured mode (the whole event is the message value).

Structured mode keeps each Kafka record self-describing for any consumer; the message key is the
aggregate id, so one case's events land on one partition in order. Extensions:
``position`` (global position in the log), ``aggregateversion`` and ``relayepoch`` (incremented
whenever the relay republishes the log to a broker that lost it).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Container
from typing import Any, NamedTuple
from uuid import UUID

import orjson

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class RelayedEvent(NamedTuple):  # a tuple: built for every record a Kafka-fed projection reads
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


@functools.lru_cache(maxsize=16384)
def _subject(text: str) -> UUID:
    """An aggregate id from its text, through a cache: a batch's records name the same
    aggregates over and over, and UUID() from text is slow Python (UUIDs are immutable)."""
    return UUID(text)


def decode(value: bytes, *, topics: Container[str] | None = None) -> RelayedEvent:
    """The relayed event a message carries; raises MalformedCloudEvent for anything else.

    ``topics``: decode the state only of events of these topics; the others come with an empty
    state (a reader that only follows where they are in the log need not unpack them).
    orjson parses the envelope (the stdlib parser took most of a Kafka-fed projection's own
    decoding time). A JSON state (an unsealed event: ``data``) is taken from the stdlib's parse,
    which keeps integers beyond 64 bits exact (orjson makes them floats); sealed events travel as
    ``data_base64``.
    """
    try:
        try:
            envelope = orjson.loads(value)
        except orjson.JSONDecodeError:
            envelope = json.loads(value)
        if envelope.get("specversion") != "1.0":
            raise MalformedCloudEvent(f"unsupported specversion {envelope.get('specversion')!r}")
        topic = envelope["type"]
        if not isinstance(topic, str):
            raise TypeError(f"type is {type(topic).__name__}, not a string")
        if topics is not None and topic not in topics:
            state = b""
        elif "data_base64" in envelope:
            state = binascii.a2b_base64(envelope["data_base64"])
        else:
            data = json.loads(value)["data"]
            state = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return RelayedEvent(
            position=int(envelope["position"]),
            originator_id=_subject(envelope["subject"]),
            originator_version=int(envelope["aggregateversion"]),
            topic=topic,
            state=state,
            epoch=int(envelope.get("relayepoch", 1)),
        )
    except MalformedCloudEvent:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise MalformedCloudEvent(f"not a relief-ledger CloudEvent: {error}") from error
