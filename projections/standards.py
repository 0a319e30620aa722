"""The local minimum-living standards' read model: every figure ever recorded, never overwritten.

``read_models.standards`` holds one row per ``StandardSet`` or ``StandardCorrected`` event with
its log position and the time it was recorded. Two questions are answered from it:

- the standard in force for a programme in a place (a village, township, county ...) on a day:
  of the figures covering the place (its province, prefecture or county) with an effective date
  not after the day, the most specific division's latest, each date's figure being its latest
  correction;
- the same "as the ledger knew it at T": only the events recorded by T count, so an answer
  given before a correction can be given again, and the correction is visible as one
  (``kind`` corrected, ``corrects`` the version it replaced, ``superseded_by``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.living_standards import LivingStandard
from projections.base import Projection, RecordedEvent, handles


class StandardsProjection(Projection):
    name = "standards"
    tables = (
        """CREATE TABLE standards (
            position bigint PRIMARY KEY,
            standard_id uuid NOT NULL,
            version integer NOT NULL,
            division text NOT NULL,
            programme text NOT NULL CHECK (programme IN ('dibao', 'tekun')),
            effective_from date NOT NULL,
            monthly_amount numeric NOT NULL CHECK (monthly_amount > 0),
            currency text NOT NULL,
            source text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('set', 'corrected')),
            corrects integer,
            reason text,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            UNIQUE (standard_id, version)
        )""",
        "CREATE INDEX standards_lookup ON standards (programme, division, effective_from)",
    )
    views = ("standards",)

    @handles(LivingStandard.StandardSet, LivingStandard.StandardCorrected)
    def recorded(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        corrected = isinstance(e, LivingStandard.StandardCorrected)
        cursor.execute(
            "INSERT INTO standards (position, standard_id, version, division, programme,"
            " effective_from, monthly_amount, currency, source, kind, corrects, reason,"
            " recorded_by, recorded_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (
                recorded.position,
                recorded.originator_id,
                recorded.originator_version,
                e.division,
                e.programme,
                e.effective_from,
                e.monthly_amount,
                e.currency,
                e.source,
                "corrected" if corrected else "set",
                e.corrects if corrected else None,
                e.reason if corrected else None,
                e.provenance.actor.id,
                recorded.timestamp,
            ),
        )


# Reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandardRow:
    """One recorded figure, with the position of the correction that replaced it as the
    ledger knew it at the time asked about (None: still the figure of its date)."""

    standard_id: UUID
    division: str
    programme: str
    effective_from: dt.date
    monthly_amount: Decimal
    currency: str
    source: str
    kind: str
    version: int
    corrects: int | None
    reason: str | None
    recorded_by: str
    recorded_at: dt.datetime
    position: int
    superseded_by: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = (
    "standard_id, division, programme, effective_from, monthly_amount, currency, source, kind,"
    " version, corrects, reason, recorded_by, recorded_at, position"
)
#: The figures recorded by %(known_at)s (all when null), each with the later correction of its
#: date, if any was recorded by then.
_KNOWN = (
    f"SELECT {_COLUMNS}, lead(position) OVER (PARTITION BY standard_id, effective_from"
    " ORDER BY position) AS superseded_by FROM read_models.standards"
    " WHERE (%(known_at)s::timestamptz IS NULL OR recorded_at <= %(known_at)s)"
)


def _rows(cursor: Cursor[Any]) -> list[StandardRow]:
    return [StandardRow(*row) for row in cursor.fetchall()]


def standard_versions(
    cursor: Cursor[Any],
    *,
    division: str | None = None,
    programme: str | None = None,
    known_at: dt.datetime | None = None,
) -> list[StandardRow]:
    """Every figure recorded (by ``known_at``) for ``division`` and the divisions inside it,
    corrections included, in division, programme, date and log order."""
    cursor.execute(
        f"SELECT * FROM ({_KNOWN}) k"
        " WHERE (%(division)s::text IS NULL OR left(division, length(%(division)s)) = %(division)s)"
        " AND (%(programme)s::text IS NULL OR programme = %(programme)s)"
        " ORDER BY division, programme, effective_from, position",
        {"division": division, "programme": programme, "known_at": known_at},
    )
    return _rows(cursor)


def standards_in_force(
    cursor: Cursor[Any],
    *,
    place: str,
    day: dt.date,
    programme: str | None = None,
    known_at: dt.datetime | None = None,
) -> list[StandardRow]:
    """The standard in force in ``place`` (any division code) on ``day``, one per programme
    (or of ``programme``), as currently known or as known at ``known_at``."""
    cursor.execute(
        f"SELECT DISTINCT ON (programme) * FROM ({_KNOWN}) k"
        " WHERE superseded_by IS NULL AND left(%(place)s, length(division)) = division"
        " AND effective_from <= %(day)s"
        " AND (%(programme)s::text IS NULL OR programme = %(programme)s)"
        " ORDER BY programme, length(division) DESC, effective_from DESC",
        {"place": place, "day": day, "programme": programme, "known_at": known_at},
    )
    return _rows(cursor)


def standard_in_force(
    cursor: Cursor[Any],
    programme: str,
    village: str,
    day: dt.date,
    *,
    known_at: dt.datetime | None = None,
) -> StandardRow | None:
    """The standard of ``programme`` in force in ``village`` on ``day``."""
    found = standards_in_force(
        cursor, place=village, day=day, programme=programme, known_at=known_at
    )
    return found[0] if found else None
