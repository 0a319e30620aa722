"""The division register's read model: one row per division and name period.

``read_models.divisions`` (code, name, level, parent, valid_from, valid_to, merged_into,
last_position): a rename closes the row of the old name and opens one with the new; a merge or
an abolition closes the open row. Registered first among the projections, so the register is
read back before the views that name divisions. The in-memory index commands consult
(infra/divisions.py) and the names beside codes in answers come from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Cursor

from domain.division import Division
from projections.base import Projection, RecordedEvent
from projections.sets import Column, insert

_ROW: tuple[Column, ...] = (
    ("division_id", "uuid"),
    ("code", "text"),
    ("name", "text"),
    ("level", "text"),
    ("parent", "text"),
    ("valid_from", "date"),
    ("last_position", "bigint"),
)

LEVEL_NAMES = {2: "province", 4: "prefecture", 6: "county", 9: "township", 12: "village"}


class DivisionsProjection(Projection):
    name = "divisions"
    tables = (
        """CREATE TABLE divisions (
            division_id uuid NOT NULL,
            code text NOT NULL,
            name text NOT NULL,
            level text NOT NULL,
            parent text,
            valid_from date NOT NULL,
            valid_to date,
            merged_into text,
            last_position bigint NOT NULL,
            PRIMARY KEY (code, valid_from)
        )""",
        # the names beside codes in answers: the open row of each code
        "CREATE UNIQUE INDEX divisions_open ON divisions (code) WHERE valid_to IS NULL",
        "CREATE INDEX divisions_parent ON divisions (parent, code)",
        "CREATE INDEX divisions_id ON divisions (division_id) WHERE valid_to IS NULL",
        # the villages in force on a day, walked and counted from the index alone (staffing's
        # villages without a coordinator: every village of the province)
        "CREATE INDEX divisions_villages ON divisions (code) INCLUDE (valid_from, valid_to)"
        " WHERE level = 'village'",
    )
    views = ("divisions",)

    @classmethod
    def topics(cls) -> list[str]:
        from eventsourcing.utils import get_topic

        return sorted(
            get_topic(kind)
            for kind in (
                Division.Established,
                Division.Renamed,
                Division.MergedInto,
                Division.Abolished,
            )
        )

    def apply_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        """Establishments in one statement; the rare changes one statement each, in order
        (a division established and renamed in one batch is inserted before it is closed)."""
        established: list[tuple[Any, ...]] = []

        def flush() -> None:
            insert(cursor, "divisions", _ROW, established, conflict="ON CONFLICT DO NOTHING")
            established.clear()

        for recorded in events:
            event = recorded.event
            if isinstance(event, Division.Established):
                established.append(
                    (
                        recorded.originator_id,
                        event.code,
                        event.name,
                        LEVEL_NAMES[event.level],
                        event.parent,
                        event.effective_from,
                        recorded.position,
                    )
                )
                continue
            flush()
            merged = event.successor if isinstance(event, Division.MergedInto) else None
            cursor.execute(
                "UPDATE divisions SET valid_to = %s, merged_into = %s, last_position = %s"
                " WHERE division_id = %s AND valid_to IS NULL",
                (event.effective_from, merged, recorded.position, recorded.originator_id),
            )
            if isinstance(event, Division.Renamed):
                cursor.execute(
                    "INSERT INTO divisions"
                    " (division_id, code, name, level, parent, valid_from, last_position)"
                    " SELECT division_id, code, %s, level, parent, %s, %s FROM divisions"
                    " WHERE division_id = %s AND valid_to = %s ON CONFLICT DO NOTHING",
                    (
                        event.name,
                        event.effective_from,
                        recorded.position,
                        recorded.originator_id,
                        event.effective_from,
                    ),
                )
        flush()


# Reading names ------------------------------------------------------------------------------


#: A division's name as answers give it: its current one, or for a code merged or abolished
#: since, the last it had. ``{code}``: the SQL expression of the code; answers reading rows
#: add it beside them in their own statement (no round trip of its own). The code is compared
#: in the register's collation: read models keep codes in "C", and codes of mixed collations
#: compare without the register's index (a scan of the register per row named).
NAME_OF = (
    '(SELECT d.name FROM read_models.divisions d WHERE d.code = {code} COLLATE "default"'
    " ORDER BY d.valid_to IS NULL DESC, d.valid_from DESC LIMIT 1)"
)


def division_names(cursor: Cursor[Any], codes: Iterable[str]) -> dict[str, str]:
    """The name of each code the register knows (one query)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    cursor.execute(
        f"SELECT w.code, {NAME_OF.format(code='w.code')} FROM unnest(%s::text[]) AS w(code)",
        (wanted,),
    )
    return {code: name for code, name in cursor.fetchall() if name is not None}


def name_rows(
    cursor: Cursor[Any], rows: list[dict[str, Any]], fields: Sequence[str] = ("division",)
) -> list[dict[str, Any]]:
    """Each row with the name beside each code field: ``name`` beside ``division``,
    ``<field>_name`` beside any other (None for a code the register does not know)."""
    names = division_names(cursor, (row[f] for row in rows for f in fields if row.get(f)))
    for row in rows:
        for f in fields:
            row["name" if f == "division" else f"{f}_name"] = names.get(row.get(f) or "")
    return rows
