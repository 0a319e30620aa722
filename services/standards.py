"""The local minimum-living standards: set one, or load a published list, through the domain.

Each figure goes to the ``LivingStandard`` of its division and programme (opened on its first
figure); the division must exist in the register on the effective date (``UnknownDivision``,
422 naming ``division``). A list is all or nothing: every entry is checked, then the events of
every standard it touches are saved in one atomic save, so a refused entry leaves nothing
recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from domain.commands.standards import SetStandard
from domain.errors import DomainError, InvalidValue
from domain.living_standards import (
    CURRENCY,
    LivingStandard,
    StandardVersion,
    check_standards_author,
    parse_standard_division,
    parse_standard_programme,
    standard_id,
)
from domain.provenance import Provenance
from services.divisions import DivisionService
from services.store import Store


@dataclass(frozen=True)
class StandardOutcome:
    """What one figure did: ``kind`` is ``set``, ``corrected`` or ``unchanged`` (the figure
    the date had already: nothing recorded)."""

    standard_id: UUID
    division: str
    programme: str
    kind: str
    version: StandardVersion


class StandardsService:
    def __init__(self, store: Store, divisions: DivisionService) -> None:
        self.store = store
        self.divisions = divisions

    def set_standard(self, command: SetStandard) -> StandardOutcome:
        return self.load_standards([command])[0]

    def load_standards(
        self, commands: Sequence[SetStandard], *, listed_as: str | None = None
    ) -> list[StandardOutcome]:
        """Every figure of a list, saved together (or none of them). With ``listed_as``, a
        refusal names the entry's field as ``<listed_as>[n].<field>``."""
        touched: dict[UUID, LivingStandard] = {}
        changed: dict[UUID, LivingStandard] = {}  # those with events to save
        outcomes = []
        for n, command in enumerate(commands):
            try:
                outcomes.append(self._set(command, touched, changed))
            except DomainError as error:
                if listed_as is not None and error.field and not error.field.startswith("actor"):
                    error.field = f"{listed_as}[{n}].{error.field}"
                    error.message = f"{listed_as}[{n}]: {error.message}"
                raise
        if changed:
            self.store.save(*changed.values())
        return outcomes

    def _set(
        self,
        command: SetStandard,
        touched: dict[UUID, LivingStandard],
        changed: dict[UUID, LivingStandard],
    ) -> StandardOutcome:
        check_standards_author(command.provenance)
        division = parse_standard_division(command.division)
        programme = parse_standard_programme(command.programme).value
        self.divisions.require(division, command.effective_from, "division")
        aggregate_id = standard_id(division, programme)
        standard = touched.get(aggregate_id)
        if standard is None:
            if self.store.exists(aggregate_id):
                standard = self.store.get(LivingStandard, aggregate_id)
            else:
                standard = LivingStandard.open(
                    division=division, programme=programme, provenance=command.provenance
                )
                changed[aggregate_id] = standard
            touched[aggregate_id] = standard
        before = standard.in_force.get(command.effective_from)
        recorded = standard.set_standard(
            effective_from=command.effective_from,
            monthly_amount=command.monthly_amount,
            source=command.source,
            currency=command.currency,
            reason=command.reason,
            provenance=command.provenance,
        )
        if recorded:
            changed[aggregate_id] = standard
        kind = "unchanged" if not recorded else "set" if before is None else "corrected"
        return StandardOutcome(
            aggregate_id, division, programme, kind, standard.in_force[command.effective_from]
        )


#: The keys of one entry of a standards file.
ENTRY_KEYS = frozenset(
    {"division", "programme", "effective_from", "monthly_amount", "currency", "source", "reason"}
)


def standards_from_document(document: object, provenance: Provenance) -> list[SetStandard]:
    """The commands of a standards file: a JSON list of entries (or ``{"standards": [...]}``),
    each with division, programme, effective_from, monthly_amount (text), source, and
    optionally currency and reason. Refusals name ``standards[n].<key>``."""
    if isinstance(document, dict) and set(document) <= {"standards", "note"}:
        document = document.get("standards")
    if not isinstance(document, list) or not document:
        raise InvalidValue("a standards file is a non-empty JSON list", field="standards")
    commands = []
    for n, entry in enumerate(document):
        where = f"standards[{n}]"
        if not isinstance(entry, dict):
            raise InvalidValue(f"{where} is an object", field=where)
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise InvalidValue(f"{where}: unknown key(s) {', '.join(unknown)}", field=where)
        for key in ("division", "programme", "source"):
            if not isinstance(entry.get(key), str):
                raise InvalidValue(f"{where}.{key} is text", field=f"{where}.{key}")
        try:
            effective = dt.date.fromisoformat(str(entry.get("effective_from")))
        except ValueError:
            raise InvalidValue(
                f"{where}.effective_from is a date (YYYY-MM-DD)", field=f"{where}.effective_from"
            ) from None
        reason = entry.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidValue(f"{where}.reason is text", field=f"{where}.reason")
        try:
            by = Provenance(
                provenance.actor,
                reason=reason if reason is not None else provenance.reason,
                correlation_id=provenance.correlation_id,
            )
        except InvalidValue as error:
            raise InvalidValue(f"{where}: {error.message}", field=f"{where}.reason") from None
        commands.append(
            SetStandard(
                division=entry["division"],
                programme=entry["programme"],
                effective_from=effective,
                monthly_amount=entry.get("monthly_amount"),
                currency=str(entry.get("currency", CURRENCY)),
                source=entry["source"],
                reason=reason,
                provenance=by,  # the entry's reason is kept with a set too
            )
        )
    return commands
