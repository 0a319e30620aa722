"""Reading stored event shapes of earlier versions, for the events' upcasters.

An event class with ``class_version = N`` has static methods ``upcast_v1_v2`` …
``upcast_v{N-1}_vN``; the library's mapper calls them, in order, on the state of a stored event
written by an earlier version before it makes the event. The state is decoded JSON (with the
values of registered transcodings: dates, decimals, ids); these readers turn its plain parts
into typed values and fail loudly on a shape no version ever wrote.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

#: The state of a stored event as the mapper hands it to an upcaster.
StoredState = dict[str, object]


class UnknownStoredShape(ValueError):
    """A stored event holds a shape no version of its class ever wrote."""


def text(value: object) -> str:
    if not isinstance(value, str):
        raise UnknownStoredShape(f"expected text, found {value!r}")
    return value


def optional_text(value: object) -> str | None:
    return None if value is None else text(value)


def whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnknownStoredShape(f"expected a whole number, found {value!r}")
    return value


def amount(value: object) -> Decimal:
    """Amounts were stored as text inside dicts ("500.00") and as decimals elsewhere."""
    if isinstance(value, Decimal):
        return value
    return Decimal(text(value))


def day(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(text(value))


def moment(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(text(value))


def record(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise UnknownStoredShape(f"expected an object, found {value!r}")
    return {text(key): item for key, item in value.items()}


def records(value: object) -> list[dict[str, object]]:
    if not isinstance(value, list):
        raise UnknownStoredShape(f"expected a list, found {value!r}")
    return [record(item) for item in value]


def texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise UnknownStoredShape(f"expected a list, found {value!r}")
    return tuple(text(item) for item in value)


def wholes(value: object) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise UnknownStoredShape(f"expected a list, found {value!r}")
    return tuple(whole(item) for item in value)
