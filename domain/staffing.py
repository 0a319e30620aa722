"""Staffing minimums (经办服务人员配备) by caseload band: policy data, not code.

A band table lists thresholds: a division with at least ``households_from`` relief households
needs at least ``minimum`` staff. Where the notice's bands overlap (3,000 is "under 3,000" and
"3,000 to 5,000"), the threshold form gives the higher minimum, because every figure is a
minimum. Another province's table is loaded as data with its own effective date.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from domain.errors import InvalidValue, PolicyAuthorityOnly
from domain.provenance import Provenance, Role


@dataclass(frozen=True)
class Band:
    households_from: int
    minimum: int


@dataclass(frozen=True)
class BandTable:
    bands: tuple[Band, ...]

    @classmethod
    def parse(cls, rows: object, *, field: str) -> BandTable:
        if not isinstance(rows, list) or not rows:
            raise InvalidValue(f"{field} must be a non-empty list of bands", field=field)
        bands = []
        for n, row in enumerate(rows):
            try:
                start, minimum = row["households_from"], row["minimum"]
            except (TypeError, KeyError):
                raise InvalidValue(
                    f"{field}[{n}] needs households_from and minimum", field=f"{field}[{n}]"
                ) from None
            if not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, minimum)
            ):
                raise InvalidValue(f"{field}[{n}] takes whole numbers ≥ 0", field=f"{field}[{n}]")
            bands.append(Band(start, minimum))
        if bands[0].households_from != 0:
            raise InvalidValue(f"{field} must start at 0 households", field=field)
        for before, after in itertools.pairwise(bands):
            if after.households_from <= before.households_from:
                raise InvalidValue(f"{field} thresholds must increase", field=field)
            if after.minimum < before.minimum:
                raise InvalidValue(f"{field} minimums must not decrease", field=field)
        return cls(tuple(bands))

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
        try:
            effective = dt.date.fromisoformat(str(document.get("effective_from")))
        except ValueError:
            raise InvalidValue("effective_from must be a date", field="effective_from") from None
        village = document.get("village") or {}
        minimum, review = village.get("minimum"), village.get("review_above")
        if not (isinstance(minimum, int) and isinstance(review, int) and 0 <= minimum <= review):
            raise InvalidValue(
                "village needs whole numbers minimum ≤ review_above", field="village"
            )
        name = str(document.get("name") or "").strip()
        if not name:
            raise InvalidValue("a staffing policy needs a name", field="name")
        return cls(
            name=name,
            effective_from=effective,
            county=BandTable.parse(document.get("county"), field="county"),
            township=BandTable.parse(document.get("township"), field="township"),
            village_minimum=minimum,
            village_review_above=review,
        )


def policy_on(policies: list[StaffingPolicy], day: dt.date) -> StaffingPolicy | None:
    """The policy in force on ``day``: the latest whose effective date is not after it."""
    in_force = [p for p in policies if p.effective_from <= day]
    return max(in_force, key=lambda p: p.effective_from) if in_force else None


def check_policy_author(provenance: Provenance) -> None:
    """Band tables are policy: an approving or supervising authority loads them."""
    if provenance.actor.role not in (Role.APPROVER, Role.SUPERVISOR):
        raise PolicyAuthorityOnly(
            "only an approving or supervising authority loads policy", field="actor.role"
        )
