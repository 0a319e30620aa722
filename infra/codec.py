"""How domain values are written into stored events (JSON) and read back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoding,
    UUIDAsHex,
)

from domain.provenance import Provenance


class ProvenanceAsDict(Transcoding):
    type = Provenance
    name = "provenance"

    def encode(self, obj: Provenance) -> dict[str, str | None]:
        return obj.to_dict()

    def decode(self, data: dict[str, Any]) -> Provenance:
        return Provenance.from_dict(data)


class DateAsISO(Transcoding):
    type = dt.date
    name = "date_iso"

    def encode(self, obj: dt.date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.date:
        return dt.date.fromisoformat(data)


def register_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (
        UUIDAsHex(),
        DecimalAsStr(),
        DatetimeAsISO(),
        DateAsISO(),
        ProvenanceAsDict(),
    ):
        transcoder.register(transcoding)
