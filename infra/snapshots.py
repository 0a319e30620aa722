"""Snapshots of aggregates: an aggregate's whole state at a version, so a load replays only the
events after it.

A snapshot is a cache of a replay, never a source of truth: it is written in its own table
(``relief_snapshots``, outside the audit chain, which covers ``relief_events`` only), sealed by
the application's mapper like an event (AES-GCM bound to aggregate id, version and the
snapshot's topic, so snapshot bytes never open as an event nor at another version), and can be
dropped at any time (``relief snapshots clear``) with no loss; a snapshot that does not open or
decode is ignored and the aggregate replayed in full.

The state goes through a typed tree (``encode_state``/``decode_state``): JSON has no tuples,
sets, enums, non-text dict keys, dates or decimals, and a snapshot-started load must equal a
full replay exactly (tests/unit/test_snapshots.py replays every aggregate type at every
version). Tagged nodes are ``{"§": tag, ...}``; the JSON transcoder then sees only JSON values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.utils import get_topic, resolve_topic

TAG = "§"
#: Types a snapshot may name (by topic): the domain's, and the library's aggregate base.
ALLOWED_MODULES = ("domain.", "domain:")


class SnapshotStateError(ValueError):
    """A value in an aggregate's state that a snapshot cannot carry (a snapshot is then not
    taken), or a stored snapshot that does not decode (it is then ignored)."""


@functools.lru_cache(maxsize=512)
def _resolve(topic: str) -> Any:
    if not topic.startswith(ALLOWED_MODULES):
        raise SnapshotStateError(f"a snapshot may not name {topic!r}")
    return resolve_topic(topic)


@functools.lru_cache(maxsize=512)
def _fields(kind: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind))


def encode_state(value: Any) -> Any:
    """``value`` as JSON values only, types kept in tags."""
    kind = type(value)
    if value is None or kind in (str, int, float, bool):
        return value
    if kind is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: encode_state(v) for k, v in value.items()}
        return {TAG: "m", "v": [[encode_state(k), encode_state(v)] for k, v in value.items()]}
    if kind is list:
        return [encode_state(v) for v in value]
    if kind is tuple:
        return {TAG: "t", "v": [encode_state(v) for v in value]}
    if kind is set or kind is frozenset:
        items = [encode_state(v) for v in value]
        return {TAG: "s" if kind is set else "f", "v": items}
    if kind is Decimal:
        return {TAG: "D", "v": str(value)}
    if kind is UUID:
        return {TAG: "u", "v": value.hex}
    if kind is dt.datetime:
        return {TAG: "dt", "v": value.isoformat()}
    if kind is dt.date:
        return {TAG: "d", "v": value.isoformat()}
    if isinstance(value, Enum):
        return {TAG: "e", "c": get_topic(kind), "v": encode_state(value.value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {name: encode_state(getattr(value, name)) for name in _fields(kind)}  # type: ignore[arg-type]
        return {TAG: "o", "c": get_topic(kind), "v": fields}
    raise SnapshotStateError(f"a snapshot cannot carry a {kind.__module__}.{kind.__qualname__}")


def decode_state(tree: Any) -> Any:
    kind = type(tree)
    if kind is list:
        return [decode_state(v) for v in tree]
    if kind is not dict:
        return tree
    tag = tree.get(TAG)
    if tag is None:
        return {k: decode_state(v) for k, v in tree.items()}
    data = tree["v"]
    if tag == "t":
        return tuple(decode_state(v) for v in data)
    if tag == "m":
        return {decode_state(k): decode_state(v) for k, v in data}
    if tag == "s":
        return {decode_state(v) for v in data}
    if tag == "f":
        return frozenset(decode_state(v) for v in data)
    if tag == "D":
        return Decimal(data)
    if tag == "u":
        return UUID(data)
    if tag == "dt":
        return dt.datetime.fromisoformat(data)
    if tag == "d":
        return dt.date.fromisoformat(data)
    if tag == "e":
        return _resolve(tree["c"])(decode_state(data))
    if tag == "o":
        cls = _resolve(tree["c"])
        # Frozen dataclasses: built without __init__ (their checks ran when the event was
        # recorded; a snapshot restores, it does not validate), as events' values are.
        obj = object.__new__(cls)
        for name, value in data.items():
            object.__setattr__(obj, name, decode_state(value))
        return obj
    raise SnapshotStateError(f"unknown tag {tag!r} in a snapshot")


class AggregateSnapshot(Snapshot):
    """The library's snapshot event, its state carried as a typed tree (see module doc)."""

    @classmethod
    def take(cls, aggregate: Any) -> AggregateSnapshot:
        state = dict(vars(aggregate))
        for private in ("_id", "_version", "_pending_events"):
            state.pop(private, None)
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=cls.create_timestamp(),
            topic=get_topic(type(aggregate)),
            state={"tree": encode_state(state)},
        )

    def mutate(self, _: Any) -> Any:
        cls = _resolve(self.topic)
        state = decode_state(self.state["tree"])
        state["_id"] = self.originator_id
        state["_version"] = self.originator_version
        state["_pending_events"] = []
        aggregate = object.__new__(cls)
        aggregate.__dict__.update(state)
        return aggregate
