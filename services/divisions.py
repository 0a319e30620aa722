"""The division register: checking the divisions commands name, and loading published lists.

Every command that names a division is checked against the register at the command's own
effective date (``require``): a code that is well formed but names no division then is refused
with ``UnknownDivision`` (422 naming the field) and nothing is recorded. ``load_division_list``
writes the events a list implies (domain ``plan_register_changes``): the same list twice writes
nothing, a newer list only its differences.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eventsourcing.domain import Aggregate

from domain.division import (
    Division,
    DivisionCatalogue,
    DivisionEntry,
    ListedDivision,
    check_division_exists,
    division_id,
    plan_register_changes,
)
from domain.provenance import Provenance
from services.store import Store

#: Events per atomic save when loading a list (a save of 500 aggregates hung the psycopg
#: pipeline of the store; 200 writes the 28,745 divisions of Guangdong in about 145 saves).
LOAD_BATCH = 200


@dataclass(frozen=True)
class LoadReport:
    established: int
    renamed: int
    abolished: int
    #: listed codes the register has ended (merged or abolished): left as they are
    ended: int

    @property
    def written(self) -> int:
        return self.established + self.renamed + self.abolished


class DivisionService:
    def __init__(self, store: Store, register: DivisionCatalogue) -> None:
        self.store = store
        self.register = register

    def require(self, code: str, on_date: dt.date, field: str) -> DivisionEntry:
        """The division ``code`` names on ``on_date``; ``UnknownDivision`` naming ``field``."""
        return check_division_exists(self.register, code, on_date, field=field)

    def require_all(self, named: Iterable[tuple[str, str]], on_date: dt.date) -> None:
        """Each (code, field) of a command, at the command's date."""
        for code, field in named:
            self.require(code, on_date, field)

    def load_division_list(
        self,
        listed: Sequence[ListedDivision],
        provenance: Provenance,
        *,
        effective_from: dt.date,
    ) -> LoadReport:
        """Write what ``listed`` changes in the register, effective from ``effective_from``,
        in saves of ``LOAD_BATCH`` divisions."""
        plan = plan_register_changes(self.register.current(), listed)
        pending: list[Aggregate] = []

        def add(aggregate: Aggregate) -> None:
            pending.append(aggregate)
            if len(pending) >= LOAD_BATCH:
                self.store.save(*pending)
                pending.clear()

        for item in plan.establish:
            add(
                Division.establish(
                    code=item.code,
                    name=item.name,
                    effective_from=effective_from,
                    provenance=provenance,
                )
            )
        for item in plan.rename:
            division = self.store.get(Division, division_id(item.code))
            division.rename(name=item.name, effective_from=effective_from, provenance=provenance)
            add(division)
        for code in plan.abolish:
            division = self.store.get(Division, division_id(code))
            division.abolish(effective_from=effective_from, provenance=provenance)
            add(division)
        if pending:
            self.store.save(*pending)
        return LoadReport(
            established=len(plan.establish),
            renamed=len(plan.rename),
            abolished=len(plan.abolish),
            ended=len(plan.ended),
        )
