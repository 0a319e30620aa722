"""How domain values are written into stored events (JSON) and read back.

Every payload value is typed: the library's transcodings for ids, decimals and times, ours for
dates, provenance and the domain's frozen value types. A value type is stored as
``{"_type_": NAME, "_data_": {field: value, ...}}``: the NAMEs below are part of the stored
format and never change (a new shape gets a new name, or an upcaster on its event).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoding,
    UUIDAsHex,
)

from domain.case import (
    Asset,
    HomeVisit,
    IncomeItem,
    MeansTest,
    MeansTestCorrection,
    PaymentCorrection,
    ServiceVoided,
)
from domain.contract import EventAtPosition, EventOfAggregate, Terms
from domain.household import HouseholdMember
from domain.investigation import (
    BanSanction,
    CitedAlert,
    PenaltySanction,
    TerminationSanction,
    VerdictInput,
    ViolationSanction,
)
from domain.provenance import Actor, Provenance, Role
from domain.staff import DeclaredRelative
from domain.staffing import Band, BandTable, StaffingPolicy

#: Stored name → domain value type. Names are forever; see the module docstring.
VALUE_TYPES: dict[str, type] = {
    "income_item": IncomeItem,
    "asset": Asset,
    "home_visit": HomeVisit,
    "means_test": MeansTest,
    "payment_correction": PaymentCorrection,
    "service_voided": ServiceVoided,
    "means_test_correction": MeansTestCorrection,
    "terms": Terms,
    "event_at_position": EventAtPosition,
    "event_of_aggregate": EventOfAggregate,
    "household_member": HouseholdMember,
    "declared_relative": DeclaredRelative,
    "cited_alert": CitedAlert,
    "verdict": VerdictInput,
    "violation_sanction": ViolationSanction,
    "penalty_sanction": PenaltySanction,
    "termination_sanction": TerminationSanction,
    "ban_sanction": BanSanction,
    "staffing_band": Band,
    "staffing_band_table": BandTable,
    "staffing_policy": StaffingPolicy,
}


class ValueAsDict(Transcoding):
    """A frozen dataclass of the domain as the dict of its fields.

    JSON has no tuples: sequences come back as lists and are made tuples again, as the value
    types declare them. No validation on the way back: a stored value was validated when its
    event was recorded, and reading must stay cheap (aggregate loads are a hot path)."""

    def __init__(self, name: str, kind: type) -> None:
        self.name, self.type = name, kind
        self._fields = tuple(field.name for field in dataclasses.fields(kind))

    def encode(self, obj: Any) -> dict[str, Any]:
        return {field: getattr(obj, field) for field in self._fields}

    def decode(self, data: dict[str, Any]) -> Any:
        for field, value in data.items():
            if type(value) is list:
                data[field] = tuple(value)
        return self.type(**data)


class ProvenanceAsDict(Transcoding):
    """Every event carries one. Reading one back is a cache lookup: a case's events share a
    few actors, reasons and correlation ids, and building and checking a Provenance (its text
    rules run on construction) was a sixth of an aggregate load. Provenance is immutable, so
    events may share one."""

    type = Provenance
    name = "provenance"

    def encode(self, obj: Provenance) -> dict[str, str | None]:
        return obj.to_dict()

    def decode(self, data: dict[str, Any]) -> Provenance:
        return _provenance(
            data["actor_id"],
            data["actor_role"],
            data["actor_organisation"],
            data.get("reason"),
            data.get("correlation_id"),
            data.get("actor_subject"),
        )


@functools.lru_cache(maxsize=1024)
def _provenance(
    actor_id: str,
    role: str,
    organisation: str,
    reason: str | None,
    correlation_id: str | None,
    subject: str | None = None,
) -> Provenance:
    return Provenance(Actor(actor_id, Role(role), organisation, subject), reason, correlation_id)


class UUIDAsHexCached(UUIDAsHex):
    """The library's ``uuid_hex``, read through a cache: the ids of a batch's events repeat
    (cases, households, contractors, contracts), and building a UUID from text is slow Python.
    UUIDs are immutable, so events may share one."""

    def decode(self, data: str) -> UUID:
        if type(data) is not str:
            raise TypeError(f"uuid_hex holds {type(data).__name__}, not text")
        return _uuid_from_hex(data)


@functools.lru_cache(maxsize=16384)
def _uuid_from_hex(data: str) -> UUID:
    return UUID(data)


class DateAsISO(Transcoding):
    type = dt.date
    name = "date_iso"

    def encode(self, obj: dt.date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.date:
        return dt.date.fromisoformat(data)


#: orjson reads integers from -2**63 to 2**64 - 1 as integers, larger ones as floats.
_BIG = float(2**63)


class _ReadAsLibrary(Exception):
    """A document orjson read otherwise than the library would."""


class _Undecoded:
    """The value of a field left undecoded (``FastJSONTranscoder.decode_fields``): any use
    of it fails loudly, rather than passing for a value (a field with a default would
    otherwise read as its class's default)."""

    __slots__ = ()

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise AttributeError("this field of the event was not decoded (decode_fields)")

    __bool__ = __str__ = __format__ = __hash__ = __eq__ = __iter__ = __len__ = _refuse
    __getattr__ = __lt__ = __le__ = __gt__ = __ge__ = __int__ = __float__ = _refuse

    def __repr__(self) -> str:
        return "UNDECODED"


UNDECODED: Any = _Undecoded()


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder, reading with orjson.

    Writing is the library's, byte for byte. Reading parses with orjson, then turns every
    ``{"_type_": NAME, "_data_": ...}`` into its value, innermost first, as the library's
    ``object_hook`` does: the same values, in about three quarters of the time (decoding
    stored events is a third of a projection's Python time in catch-up). A document orjson
    refuses (NaN) or reads otherwise (an integer beyond 64 bits comes back a float: any float
    that large sends the document back), or whose values do not decode, is read the library's
    way, which gives its answer or its error."""

    def decode(self, data: bytes) -> Any:
        try:
            return self._revived(orjson.loads(data))
        except Exception:
            return super().decode(data)

    def decode_fields(self, data: bytes, fields: frozenset[str]) -> dict[str, Any]:
        """A document's ``fields`` (those it holds) revived, its other keys held by
        ``UNDECODED``: for a reader that needs a few fields of an event (a rebuild's trailing
        stage), whose other values cost their reviving for nothing. Raises on whatever
        ``decode`` would read otherwise (the caller then decodes the whole document)."""
        document = orjson.loads(data)
        if type(document) is not dict or ("_type_" in document and "_data_" in document):
            raise _ReadAsLibrary
        decoded = dict.fromkeys(document, UNDECODED)
        for name in fields:
            if name in document:
                decoded[name] = self._revived(document[name])
        if "class_version" in document:  # the mapper's, for its upcasters
            decoded["class_version"] = self._revived(document["class_version"])
        return decoded

    def _revived(self, value: Any) -> Any:
        """A document's value revived. ``_typed`` and the loops below repeat this test inline
        rather than call it: they run once per value of every stored event (a call each cost
        3% of decoding an event of eight typed values)."""
        kind = type(value)
        if kind is dict:
            return self._revive_dict(value)
        if kind is list:
            self._revive_list(value)
        elif kind is float and not -_BIG < value < _BIG:
            raise _ReadAsLibrary
        return value

    def _revive_dict(self, d: dict[str, Any]) -> Any:
        if len(d) == 2 and "_type_" in d and "_data_" in d:
            return self._typed(d)
        for key, value in d.items():  # values replaced in place: the dict keeps its size
            kind = type(value)
            if kind is dict:
                d[key] = self._revive_dict(value)
            elif kind is list:
                self._revive_list(value)
            elif kind is float and not -_BIG < value < _BIG:
                raise _ReadAsLibrary
        return d

    def _typed(self, d: dict[str, Any]) -> Any:
        data = d["_data_"]  # revived inline (``_revived``): once per typed value of every event
        kind = type(data)
        if kind is dict:
            data = self._revive_dict(data)
        elif kind is list:
            self._revive_list(data)
        elif kind is float and not -_BIG < data < _BIG:
            raise _ReadAsLibrary
        return self.names[d["_type_"]].decode(data)

    def _revive_list(self, items: list[Any]) -> None:
        for index, value in enumerate(items):
            kind = type(value)
            if kind is dict:
                items[index] = self._revive_dict(value)
            elif kind is list:
                self._revive_list(value)
            elif kind is float and not -_BIG < value < _BIG:
                raise _ReadAsLibrary


def register_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (
        UUIDAsHexCached(),
        DecimalAsStr(),
        DatetimeAsISO(),
        DateAsISO(),
        ProvenanceAsDict(),
        *(ValueAsDict(name, kind) for name, kind in VALUE_TYPES.items()),
    ):
        transcoder.register(transcoding)
