"""The staffing band tables' read model: every recorded version, none overwritten.

``read_models.staffing_policies`` holds one row per version of the table for an effective date
(revision 1 its adoption, each later revision a correction naming the one it ``corrects``),
with who recorded it, when (``recorded_at``, the event's time) and where in the log
(``position``). The table in force on a day as the ledger knows it now is the latest revision
of the latest effective date not after that day; as the ledger knew it at a moment T, the same
among the rows recorded by T (projections/staffing_view.py ``load_policies``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.staffing import StaffingBandTables
from projections.base import Projection, RecordedEvent


class PoliciesProjection(Projection):
    name = "policies"
    tables = (
        """CREATE TABLE staffing_policies (
            effective_from date NOT NULL,
            revision integer NOT NULL,
            name text NOT NULL,
            document jsonb NOT NULL,
            source text NOT NULL,
            corrects integer,
            reason text,
            loaded_by text NOT NULL,
            loaded_by_role text NOT NULL,
            recorded_at timestamptz NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (effective_from, revision)
        )""",
        "CREATE INDEX staffing_policies_recorded ON staffing_policies (recorded_at)",
    )
    views = ("staffing_policies",)

    @classmethod
    def topics(cls) -> list[str]:
        from eventsourcing.utils import get_topic

        return sorted(
            get_topic(kind)
            for kind in (StaffingBandTables.BandTableAdopted, StaffingBandTables.BandTableCorrected)
        )

    def apply_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        """One row per version (a handful in the life of the ledger); a version delivered
        twice is written once."""
        for recorded in events:
            event = recorded.event
            if not isinstance(
                event, (StaffingBandTables.BandTableAdopted, StaffingBandTables.BandTableCorrected)
            ):
                continue
            corrects, reason = (
                (event.corrects, event.reason)
                if isinstance(event, StaffingBandTables.BandTableCorrected)
                else (None, None)
            )
            cursor.execute(
                "INSERT INTO staffing_policies (effective_from, revision, name, document, source,"
                " corrects, reason, loaded_by, loaded_by_role, recorded_at, position)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    event.table.effective_from,
                    event.revision,
                    event.table.name,
                    # the table as a document with its source: loading it again changes nothing
                    Jsonb({**event.table.to_document(), "source": event.source}),
                    event.source,
                    corrects,
                    reason,
                    event.provenance.actor.id,
                    event.provenance.actor.role.value,
                    event.timestamp,
                    recorded.position,
                ),
            )
