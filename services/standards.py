"""The local minimum-living standards: set one, or load a published list, through the domain.

Each figure goes to the ``LivingStandard`` of its division and programme (opened on its first
figure); the division must exist in the register on the effective date (``UnknownDivision``,
422 naming ``division``). A list is all or nothing: every entry is checked, then the events of
every standard it touches are saved in one atomic save, so a refused entry leaves nothing
recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from domain.commands.standards import SetStandard
from domain.living_standards import (
    LivingStandard,
    StandardVersion,
    check_standards_author,
    parse_standard_division,
    parse_standard_programme,
    standard_id,
)
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

    def load_standards(self, commands: Sequence[SetStandard]) -> list[StandardOutcome]:
        """Every figure of a list, saved together (or none of them)."""
        touched: dict[UUID, LivingStandard] = {}
        changed: dict[UUID, LivingStandard] = {}  # those with events to save
        outcomes = []
        for command in commands:
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
            outcomes.append(
                StandardOutcome(
                    aggregate_id,
                    division,
                    programme,
                    kind,
                    standard.in_force[command.effective_from],
                )
            )
        if changed:
            self.store.save(*changed.values())
        return outcomes
