"""Local minimum-living standards (低保标准, 特困人员基本生活标准) as events with provenance.

A county, a prefecture or the province publishes the monthly amount per head below which a
household's income qualifies for dibao (最低生活保障标准), and the basic-living standard of
tekun support (特困人员救助供养基本生活标准); each takes effect on a date and is replaced by the
next one published. One ``LivingStandard`` aggregate per division and programme (its id derived
from both, so a pair is opened once) keeps every figure it was given:

- ``StandardSet``: the standard from ``effective_from`` on, with the notice it is published in
  (``source``);
- ``StandardCorrected``: the figure for a date that has one already was wrong (a typing error,
  a revised notice): the new figure, which version it corrects and why. The earlier figure
  stays in the log, so "what the ledger knew at T" remains answerable.

Setting the same figure from the same source for the same date again records nothing (loading a
file twice is harmless). The division must exist in the register on the effective date (the
service checks it); the standard in force for a village on a day is the most specific division
covering it with the latest effective date not after the day (projections/standards.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from eventsourcing.domain import Aggregate, event

from domain.case import Programme
from domain.errors import (
    InvalidValue,
    StandardCorrection,
    StandardsAuthorityOnly,
    StandardTerms,
)
from domain.identifiers import DivisionLevel, parse_division_code
from domain.provenance import Provenance, Role
from domain.values import check_printable, plain_amount

#: Namespace of standard ids: uuid5(STANDARD_NAMESPACE, "<division>|<programme>").
STANDARD_NAMESPACE = uuid.UUID("2b7d9e41-6c3a-5f18-8d02-6c6976696e67")

#: Programmes with a published standard (temporary assistance has none).
STANDARD_PROGRAMMES = (Programme.DIBAO, Programme.TEKUN)
#: Levels that publish standards: the province, prefecture-level cities and counties.
STANDARD_LEVELS = (DivisionLevel.PROVINCE, DivisionLevel.PREFECTURE, DivisionLevel.COUNTY)
CURRENCY = "CNY"
#: Above any monthly standard per head (Shanghai's, the highest in 2024, is under 1,600).
MAX_MONTHLY_AMOUNT = Decimal(100_000)


def standard_id(division: str, programme: str) -> uuid.UUID:
    return uuid.uuid5(STANDARD_NAMESPACE, f"{division}|{programme}")


def check_standards_author(provenance: Provenance) -> None:
    """Standards are policy: an approving or supervising authority enters them."""
    if provenance.actor.role not in (Role.APPROVER, Role.SUPERVISOR):
        raise StandardsAuthorityOnly(
            "only an approving or supervising authority sets minimum-living standards",
            field="actor.role",
        )


def parse_standard_division(code: str) -> str:
    """A province, prefecture or county code (``StandardTerms`` naming ``division``)."""
    parsed = parse_division_code(code, field="division")
    if parsed.level not in STANDARD_LEVELS:
        raise StandardTerms(
            f"standards are published by a province, prefecture or county, not a "
            f"{parsed.level.name.lower()} ({parsed.code})",
            field="division",
        )
    return parsed.code


def parse_standard_programme(value: str) -> Programme:
    try:
        programme = Programme(value)
    except ValueError:
        programme = None
    if programme not in STANDARD_PROGRAMMES:
        raise StandardTerms(
            f"standards are set for dibao or tekun, not {value!r}", field="programme"
        )
    assert programme is not None
    return programme


def parse_monthly_amount(value: object) -> Decimal:
    """A positive amount of yuan per head and month, at most two decimals."""
    try:
        amount = plain_amount(value)
    except ValueError as error:
        raise StandardTerms(f"monthly_amount: {error}", field="monthly_amount") from None
    if not 0 < amount <= MAX_MONTHLY_AMOUNT:
        raise StandardTerms(
            f"monthly_amount per head lies above 0 and at most {MAX_MONTHLY_AMOUNT} yuan",
            field="monthly_amount",
        )
    return amount.quantize(Decimal("0.01"))


def _text(value: object, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise StandardTerms(f"{field} has 1 to {max_length} characters", field=field)
    check_printable(value, field=field)
    return value.strip()


@dataclass(frozen=True)
class StandardVersion:
    """One figure as recorded: the aggregate version of its event, and what it corrects."""

    version: int
    effective_from: dt.date
    monthly_amount: Decimal
    source: str
    corrects: int | None = None
    reason: str | None = None


class LivingStandard(Aggregate):
    """The standards of one programme in one division, every figure it was ever given."""

    @classmethod
    def open(cls, *, division: str, programme: str, provenance: Provenance) -> LivingStandard:
        check_standards_author(provenance)
        return cls(
            division=parse_standard_division(division),
            programme=parse_standard_programme(programme).value,
            provenance=provenance,
        )

    @staticmethod
    def create_id(division: str, programme: str, **_: object) -> uuid.UUID:
        return standard_id(division, programme)

    class Opened(Aggregate.Created):
        division: str
        programme: str
        provenance: Provenance

    @event(Opened)
    def __init__(self, division: str, programme: str, provenance: Provenance) -> None:
        self.division = division
        self.programme = programme
        #: every figure in log order; ``in_force`` the one each effective date has now
        self.history: list[StandardVersion] = []
        self.in_force: dict[dt.date, StandardVersion] = {}

    def set_standard(
        self,
        *,
        effective_from: dt.date,
        monthly_amount: object,
        source: str,
        provenance: Provenance,
        currency: str = CURRENCY,
        reason: str | None = None,
    ) -> bool:
        """The standard from ``effective_from`` on: a ``StandardSet`` for a new date, a
        ``StandardCorrected`` (with ``reason``) for a date that has another figure, nothing
        for the figure it has. Returns whether an event was recorded."""
        check_standards_author(provenance)
        if currency != CURRENCY:
            raise StandardTerms(f"standards are in {CURRENCY}, not {currency!r}", field="currency")
        if not isinstance(effective_from, dt.date) or isinstance(effective_from, dt.datetime):
            raise InvalidValue("effective_from is a date", field="effective_from")
        amount = parse_monthly_amount(monthly_amount)
        cited = _text(source, "source", 500)
        current = self.in_force.get(effective_from)
        if current is None:
            self.trigger_event(
                self.StandardSet,
                division=self.division,
                programme=self.programme,
                effective_from=effective_from,
                monthly_amount=amount,
                currency=CURRENCY,
                source=cited,
                provenance=provenance,
            )
            return True
        if current.monthly_amount == amount and current.source == cited:
            return False  # the figure it has: nothing new to record
        why = reason if reason is not None else provenance.reason
        if why is None or not why.strip():
            raise StandardCorrection(
                f"the {self.programme} standard of {self.division} from "
                f"{effective_from.isoformat()} is {current.monthly_amount} ({current.source}); "
                f"another figure for that date is a correction and needs a reason",
                field="reason",
            )
        self.trigger_event(
            self.StandardCorrected,
            division=self.division,
            programme=self.programme,
            effective_from=effective_from,
            monthly_amount=amount,
            currency=CURRENCY,
            source=cited,
            corrects=current.version,
            reason=_text(why, "reason", 2000),
            provenance=provenance,
        )
        return True

    def _record(self, version: StandardVersion) -> None:
        self.history.append(version)
        self.in_force[version.effective_from] = version

    class StandardSet(Aggregate.Event):
        division: str
        programme: str
        effective_from: dt.date
        monthly_amount: Decimal
        currency: str
        source: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, LivingStandard)
            aggregate._record(
                StandardVersion(
                    self.originator_version,
                    self.effective_from,
                    self.monthly_amount,
                    self.source,
                )
            )

    class StandardCorrected(Aggregate.Event):
        division: str
        programme: str
        effective_from: dt.date
        monthly_amount: Decimal
        currency: str
        source: str
        corrects: int
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, LivingStandard)
            aggregate._record(
                StandardVersion(
                    self.originator_version,
                    self.effective_from,
                    self.monthly_amount,
                    self.source,
                    corrects=self.corrects,
                    reason=self.reason,
                )
            )

    def standard_on(self, day: dt.date) -> StandardVersion | None:
        """This division's own figure in force on ``day`` (latest effective date ≤ day)."""
        dates = [d for d in self.in_force if d <= day]
        return self.in_force[max(dates)] if dates else None
