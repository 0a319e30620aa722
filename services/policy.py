"""Policy as events: the province's staffing band tables, adopted and corrected.

Loading a band table (over HTTP, by the CLI, or the shipped table on first start) goes through
``load_staffing_policy``: the table is adopted for its effective date, or recorded as a
correction of the table adopted for that date, or, when it is that table already, nothing is
recorded. The decision is taken on the aggregate (domain/staffing.py ``StaffingBandTables``),
never on the read model, so two loads cannot both adopt a date: the second save conflicts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from domain.commands.policy import LoadStaffingPolicy
from domain.errors import InvalidValue
from domain.staffing import (
    BandTableVersion,
    LoadOutcome,
    StaffingBandTables,
    StaffingPolicy,
    band_tables_id,
    check_policy_author,
    require_source,
)
from services.store import Store


@dataclass(frozen=True)
class BandTableLoad:
    """What a load recorded, and the version of the table for its date now."""

    outcome: LoadOutcome
    version: BandTableVersion


class PolicyService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def band_tables(self) -> StaffingBandTables | None:
        """The province's band tables as recorded (None: no table was ever loaded)."""
        tables_id = band_tables_id()
        return (
            self.store.get(StaffingBandTables, tables_id) if self.store.exists(tables_id) else None
        )

    def load_staffing_policy(self, command: LoadStaffingPolicy) -> BandTableLoad:
        """Adopt, correct or leave as it is: the document is a band table with its ``source``
        (the notice it comes from) and, for a correction, a ``reason`` (or the provenance's)."""
        check_policy_author(command.provenance)
        document = command.document
        table = StaffingPolicy.parse(document)
        source = require_source(document.get("source"))
        reason = document.get("reason", command.provenance.reason)
        if reason is not None and not isinstance(reason, str):
            raise InvalidValue("reason is text: why the table is corrected", field="reason")
        tables = self.band_tables() or StaffingBandTables.open(provenance=command.provenance)
        outcome = tables.load(
            table=table, source=source, reason=reason, provenance=command.provenance
        )
        if outcome is not LoadOutcome.UNCHANGED:
            self.store.save(tables)
        version = tables.current(table.effective_from)
        assert version is not None
        return BandTableLoad(outcome, version)

    def tables(self, known_at: dt.datetime | None = None) -> list[StaffingPolicy]:
        """The tables in force from each effective date as the ledger knew them at
        ``known_at`` (default: now)."""
        tables = self.band_tables()
        return tables.tables(known_at) if tables is not None else []
