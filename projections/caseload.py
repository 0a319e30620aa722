"""Caseload (在册案件): open relief cases counted by county and programme."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.case import ReliefCase
from projections.base import Projection, RecordedEvent, handles


class CaseloadProjection(Projection):
    name = "caseload"
    tables = (
        """CREATE TABLE case_index (
            case_id uuid PRIMARY KEY,
            county text NOT NULL,
            programme text NOT NULL,
            status text NOT NULL,
            opened_position bigint NOT NULL,
            last_position bigint NOT NULL
        )""",
        """CREATE TABLE caseload (
            county text NOT NULL,
            programme text NOT NULL,
            open_cases integer NOT NULL CHECK (open_cases >= 0),
            PRIMARY KEY (county, programme)
        )""",
    )
    views = ("caseload",)

    @handles(ReliefCase.Opened)
    def opened(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        event = recorded.event
        cursor.execute(
            "INSERT INTO case_index (case_id, county, programme, status, opened_position,"
            " last_position) VALUES (%s, %s, %s, 'open', %s, %s)",
            (
                recorded.originator_id,
                event.county,
                event.programme,
                recorded.position,
                recorded.position,
            ),
        )
        cursor.execute(
            "INSERT INTO caseload (county, programme, open_cases) VALUES (%s, %s, 1)"
            " ON CONFLICT (county, programme) DO UPDATE SET open_cases = caseload.open_cases + 1",
            (event.county, event.programme),
        )

    @handles(ReliefCase.Closed)
    def closed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "UPDATE case_index SET status = 'closed', last_position = %s"
            " WHERE case_id = %s AND status = 'open' RETURNING county, programme",
            (recorded.position, recorded.originator_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise LookupError(f"closed case {recorded.originator_id} was never opened or is closed")
        cursor.execute(
            "UPDATE caseload SET open_cases = open_cases - 1 WHERE county = %s AND programme = %s",
            (row[0], row[1]),
        )


def query_caseload(
    cursor: Cursor[Any],
    *,
    division: str | None = None,
    programme: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Open cases by county and programme, optionally within a division (code prefix)."""
    where = ["open_cases > 0"]
    params: list[Any] = []
    if division:
        where.append("county LIKE %s")
        params.append(division[:6] + "%")
    if programme:
        where.append("programme = %s")
        params.append(programme)
    clause = " AND ".join(where)
    cursor.execute(
        f"SELECT county, programme, open_cases, count(*) OVER () FROM read_models.caseload"
        f" WHERE {clause} ORDER BY county, programme LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    rows = cursor.fetchall()
    total = rows[0][3] if rows else 0
    if not rows and offset:
        cursor.execute(f"SELECT count(*) FROM read_models.caseload WHERE {clause}", params)
        total = cursor.fetchone()[0]  # type: ignore[index]
    items = [{"county": r[0], "programme": r[1], "open_cases": r[2]} for r in rows]
    return items, total
