"""Staffing minimums (经办服务人员配备) by caseload band: policy recorded as events.

A band table lists thresholds: a division with at least ``households_from`` relief households
needs at least ``minimum`` staff. Where the notice's bands overlap (3,000 is "under 3,000" and
"3,000 to 5,000"), the threshold form gives the higher minimum, because every figure is a
minimum. Another province's table is loaded as data with its own effective date.

The province's band tables are one aggregate, ``StaffingBandTables`` (配备标准的采用与更正):
a table is adopted for its effective date with the source it comes from (the notice); a changed
table for a date that has one is a correction naming the revision it replaces, with a reason;
loading the same table again records nothing. Nothing is overwritten, so the table in force on
a day is answerable as the ledger knows it now and as it knew it at any earlier moment.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass
from enum import Enum

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    BandTableAdoptedAlready,
    CorrectionChangesNothing,
    InvalidValue,
    NoBandTableToCorrect,
    PolicyAuthorityOnly,
)
from domain.provenance import Provenance, Role
from domain.values import check_printable, require_text

#: Bounds of a band table: more bands or larger figures than any notice has are a mistake (and
#: the staffing query reads the figures as 32-bit integers).
MAX_BANDS = 50
MAX_FIGURE = 10_000_000


@dataclass(frozen=True)
class Band:
    households_from: int
    minimum: int


@dataclass(frozen=True)
class BandTable:
    bands: tuple[Band, ...]

    @classmethod
    def parse(cls, rows: object, *, field: str) -> BandTable:
        if not isinstance(rows, list) or not rows or len(rows) > MAX_BANDS:
            raise InvalidValue(f"{field} must be a list of 1 to {MAX_BANDS} bands", field=field)
        bands = []
        for n, row in enumerate(rows):
            try:
                start, minimum = row["households_from"], row["minimum"]
            except (TypeError, KeyError):
                raise InvalidValue(
                    f"{field}[{n}] needs households_from and minimum", field=f"{field}[{n}]"
                ) from None
            if not all(_figure(v) for v in (start, minimum)):
                raise InvalidValue(
                    f"{field}[{n}] takes whole numbers from 0 to {MAX_FIGURE:,}",
                    field=f"{field}[{n}]",
                )
            bands.append(Band(start, minimum))
        if bands[0].households_from != 0:
            raise InvalidValue(f"{field} must start at 0 households", field=field)
        for before, after in itertools.pairwise(bands):
            if after.households_from <= before.households_from:
                raise InvalidValue(f"{field} thresholds must increase", field=field)
            if after.minimum < before.minimum:
                raise InvalidValue(f"{field} minimums must not decrease", field=field)
        return cls(tuple(bands))

    def rows(self) -> list[dict[str, int]]:
        """The table as a document writes it (what ``parse`` reads)."""
        return [{"households_from": b.households_from, "minimum": b.minimum} for b in self.bands]

    def minimum_for(self, households: int) -> int:
        """The minimum staff for a division with this many relief households."""
        minimum = self.bands[0].minimum
        for band in self.bands:
            if households >= band.households_from:
                minimum = band.minimum
        return minimum


@dataclass(frozen=True)
class StaffingPolicy:
    name: str
    effective_from: dt.date
    county: BandTable
    township: BandTable
    village_minimum: int
    village_review_above: int

    @classmethod
    def parse(cls, document: object) -> StaffingPolicy:
        if not isinstance(document, dict):
            raise InvalidValue("a staffing policy is a JSON object", field="policy")
        effective = document.get("effective_from")
        try:
            if not isinstance(effective, str):
                raise ValueError(effective)
            effective_from = dt.date.fromisoformat(effective)
        except ValueError:
            raise InvalidValue("effective_from must be a date", field="effective_from") from None
        village = document.get("village")
        minimum = village.get("minimum") if isinstance(village, dict) else None
        review = village.get("review_above") if isinstance(village, dict) else None
        if not (
            isinstance(minimum, int)
            and isinstance(review, int)
            and _figure(minimum)
            and _figure(review)
            and minimum <= review
        ):
            raise InvalidValue(
                "village needs whole numbers minimum ≤ review_above", field="village"
            )
        name = document.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 300:
            raise InvalidValue(
                "a staffing policy needs a name of 1 to 300 characters", field="name"
            )
        check_printable(name, field="name")
        return cls(
            name=name.strip(),
            effective_from=effective_from,
            county=BandTable.parse(document.get("county"), field="county"),
            township=BandTable.parse(document.get("township"), field="township"),
            village_minimum=minimum,
            village_review_above=review,
        )

    def to_document(self) -> dict[str, object]:
        """The table as a document writes it: ``parse`` reads it back equal."""
        return {
            "name": self.name,
            "effective_from": self.effective_from.isoformat(),
            "county": self.county.rows(),
            "township": self.township.rows(),
            "village": {"minimum": self.village_minimum, "review_above": self.village_review_above},
        }


def _figure(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FIGURE


def policy_on(policies: list[StaffingPolicy], day: dt.date) -> StaffingPolicy | None:
    """The policy in force on ``day``: the latest whose effective date is not after it."""
    in_force = [p for p in policies if p.effective_from <= day]
    return max(in_force, key=lambda p: p.effective_from) if in_force else None


def check_policy_author(provenance: Provenance) -> None:
    """Band tables are policy: an approving or supervising authority loads them (and the
    ledger itself, loading the shipped table on first start; no caller is issued that role)."""
    if provenance.actor.role not in (Role.APPROVER, Role.SUPERVISOR, Role.SYSTEM):
        raise PolicyAuthorityOnly(
            "only an approving or supervising authority loads policy", field="actor.role"
        )


def require_source(value: object) -> str:
    """Where a table comes from (the notice, with its number and date): kept on its event."""
    return require_text(value, field="source", max_length=2000)


# The province's band tables as events ------------------------------------------------------

#: Namespace of the band tables' aggregate id: one stream per province, found without an index.
BAND_TABLES_NAMESPACE = uuid.UUID("5a1d3c07-8e0b-5f4e-a1b6-737461666669")
#: The province whose tables the ledger keeps (广东省).
PROVINCE = "44"


def band_tables_id(province: str = PROVINCE) -> uuid.UUID:
    return uuid.uuid5(BAND_TABLES_NAMESPACE, f"staffing-band-tables:{province}")


class LoadOutcome(Enum):
    """What loading a table recorded."""

    ADOPTED = "adopted"
    CORRECTED = "corrected"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class BandTableVersion:
    """One recorded version of the table for an effective date: revision 1 is its adoption,
    each later revision corrects the one before (``corrects``)."""

    table: StaffingPolicy
    revision: int
    source: str
    recorded_at: dt.datetime
    actor: str
    corrects: int | None = None
    reason: str | None = None

    @property
    def effective_from(self) -> dt.date:
        return self.table.effective_from


class StaffingBandTables(Aggregate):
    """The band tables of a province (经办服务人员配备标准), every version of each kept."""

    @classmethod
    def open(cls, *, province: str = PROVINCE, provenance: Provenance) -> StaffingBandTables:
        check_policy_author(provenance)
        if not (isinstance(province, str) and len(province) == 2 and province.isdigit()):
            raise InvalidValue("a province is named by its 2-digit code", field="province")
        return cls(province=province, provenance=provenance)

    @staticmethod
    def create_id(province: str, **_: object) -> uuid.UUID:
        return band_tables_id(province)

    class Opened(Aggregate.Created):
        province: str
        provenance: Provenance

    @event(Opened)
    def __init__(self, province: str, provenance: Provenance) -> None:
        self.province = province
        self.versions: dict[dt.date, list[BandTableVersion]] = {}

    # Reading ---------------------------------------------------------------------------------

    def current(self, effective_from: dt.date) -> BandTableVersion | None:
        """The latest version of the table for ``effective_from`` (None: none adopted)."""
        versions = self.versions.get(effective_from)
        return versions[-1] if versions else None

    def history(self) -> list[BandTableVersion]:
        """Every version, by effective date and revision."""
        return [v for day in sorted(self.versions) for v in self.versions[day]]

    def tables(self, known_at: dt.datetime | None = None) -> list[StaffingPolicy]:
        """Each effective date's table as the ledger knew it at ``known_at`` (default: now),
        by effective date; a table recorded after ``known_at`` is not known then."""
        known = []
        for day in sorted(self.versions):
            versions = [
                v for v in self.versions[day] if known_at is None or v.recorded_at <= known_at
            ]
            if versions:
                known.append(versions[-1].table)
        return known

    # Invariants ------------------------------------------------------------------------------

    def check_not_adopted(self, effective_from: dt.date) -> None:
        if self.current(effective_from) is not None:
            raise BandTableAdoptedAlready(
                f"a band table is in force from {effective_from.isoformat()} already:"
                " a changed table for that date is a correction",
                field="effective_from",
            )

    def check_adopted(self, effective_from: dt.date) -> BandTableVersion:
        current = self.current(effective_from)
        if current is None:
            raise NoBandTableToCorrect(
                f"no band table was adopted from {effective_from.isoformat()} to correct",
                field="effective_from",
            )
        return current

    @staticmethod
    def check_changes(current: BandTableVersion, table: StaffingPolicy) -> None:
        if current.table == table:
            raise CorrectionChangesNothing(
                f"revision {current.revision} of the table from"
                f" {table.effective_from.isoformat()} is this table already",
                field="policy",
            )

    # Commands --------------------------------------------------------------------------------

    def load(
        self,
        *,
        table: StaffingPolicy,
        source: str,
        reason: str | None,
        provenance: Provenance,
    ) -> LoadOutcome:
        """Adopt ``table`` for its effective date, correct the one adopted for it, or record
        nothing when it is that table already (the same load twice is one event)."""
        check_policy_author(provenance)
        current = self.current(table.effective_from)
        if current is None:
            self.adopt(table=table, source=source, provenance=provenance)
            return LoadOutcome.ADOPTED
        if current.table == table:
            return LoadOutcome.UNCHANGED
        self.correct(table=table, source=source, reason=reason, provenance=provenance)
        return LoadOutcome.CORRECTED

    def adopt(self, *, table: StaffingPolicy, source: str, provenance: Provenance) -> None:
        check_policy_author(provenance)
        stated = require_source(source)
        self.check_not_adopted(table.effective_from)
        self.trigger_event(
            self.BandTableAdopted, table=table, revision=1, source=stated, provenance=provenance
        )

    class BandTableAdopted(Aggregate.Event):
        table: StaffingPolicy
        revision: int
        source: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffingBandTables)
            aggregate.versions[self.table.effective_from] = [
                BandTableVersion(
                    self.table,
                    self.revision,
                    self.source,
                    self.timestamp,
                    self.provenance.actor.id,
                )
            ]

    def correct(
        self,
        *,
        table: StaffingPolicy,
        source: str,
        reason: str | None,
        provenance: Provenance,
    ) -> None:
        """Replace the table adopted for the same effective date; the replaced revision stays
        recorded (answers as the ledger knew them before still use it)."""
        check_policy_author(provenance)
        stated = require_source(source)
        why = require_text(reason, field="reason")
        current = self.check_adopted(table.effective_from)
        self.check_changes(current, table)
        self.trigger_event(
            self.BandTableCorrected,
            table=table,
            revision=current.revision + 1,
            corrects=current.revision,
            source=stated,
            reason=why,
            provenance=provenance,
        )

    class BandTableCorrected(Aggregate.Event):
        table: StaffingPolicy
        revision: int
        corrects: int
        source: str
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, StaffingBandTables)
            aggregate.versions[self.table.effective_from].append(
                BandTableVersion(
                    self.table,
                    self.revision,
                    self.source,
                    self.timestamp,
                    self.provenance.actor.id,
                    corrects=self.corrects,
                    reason=self.reason,
                )
            )
