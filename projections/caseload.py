"""Caseload (在册案件): cases by village, programme and status, rolled up by division code;
and the case index behind per-staff, per-contractor and waiting-application reads."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.case import CaseStatus, ReliefCase
from projections.base import Projection, RecordedEvent, handles

#: The status each event moves a case to.
STATUS_AFTER: dict[type, CaseStatus] = {
    ReliefCase.Investigated: CaseStatus.INVESTIGATED,
    ReliefCase.Recommended: CaseStatus.RECOMMENDED,
    ReliefCase.Approved: CaseStatus.APPROVED,
    ReliefCase.Rejected: CaseStatus.REJECTED,
    ReliefCase.Suspended: CaseStatus.SUSPENDED,
    ReliefCase.Resumed: CaseStatus.APPROVED,
    ReliefCase.Closed: CaseStatus.CLOSED,
}

LEVELS = {"province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12}


class CaseloadProjection(Projection):
    name = "caseload"
    tables = (
        """CREATE TABLE case_index (
            case_id uuid PRIMARY KEY,
            programme text NOT NULL,
            status text NOT NULL,
            village text NOT NULL,
            household_id uuid NOT NULL,
            received_county text NOT NULL,
            cross_region boolean NOT NULL,
            staff_id uuid,
            contractor_id uuid,
            received_at timestamptz NOT NULL,
            status_since timestamptz NOT NULL,
            last_position bigint NOT NULL
        )""",
        "CREATE INDEX case_index_village ON case_index (village text_pattern_ops)",
        "CREATE INDEX case_index_staff ON case_index (staff_id) WHERE staff_id IS NOT NULL",
        "CREATE INDEX case_index_contractor ON case_index (contractor_id)"
        " WHERE contractor_id IS NOT NULL",
        """CREATE TABLE caseload (
            village text NOT NULL,
            programme text NOT NULL,
            status text NOT NULL,
            cases integer NOT NULL CHECK (cases >= 0),
            households integer NOT NULL DEFAULT 0 CHECK (households >= 0),
            PRIMARY KEY (village, programme, status)
        )""",
        # How many of a group's cases each household has: its households count changes when
        # a household's first case enters the group or its last one leaves.
        """CREATE TABLE case_households (
            village text NOT NULL,
            programme text NOT NULL,
            status text NOT NULL,
            household_id uuid NOT NULL,
            cases integer NOT NULL CHECK (cases > 0),
            PRIMARY KEY (village, programme, status, household_id)
        )""",
    )
    views = ("caseload", "case_index")

    @staticmethod
    def _count(
        cursor: Cursor[Any],
        village: str,
        programme: str,
        status: str,
        household_id: Any,
        delta: int,
    ) -> None:
        """One case enters (+1) or leaves (-1) a group; one statement either way."""
        group = (village, programme, status)
        if delta > 0:
            cursor.execute(
                "WITH h AS ("
                "  INSERT INTO case_households (village, programme, status, household_id, cases)"
                "  VALUES (%s, %s, %s, %s, 1)"
                "  ON CONFLICT (village, programme, status, household_id)"
                "  DO UPDATE SET cases = case_households.cases + 1 RETURNING cases)"
                " INSERT INTO caseload (village, programme, status, cases, households)"
                " SELECT %s, %s, %s, 1, (h.cases = 1)::int FROM h"
                " ON CONFLICT (village, programme, status) DO UPDATE"
                " SET cases = caseload.cases + 1,"
                " households = caseload.households + excluded.households",
                (*group, household_id, *group),
            )
            return
        # An UPDATE, not an upsert: the CHECK (cases >= 0) would judge the upsert's proposed
        # row (-1) before the conflict turns it into an update. Of the two household CTEs only
        # one acts (same snapshot, exclusive conditions).
        cursor.execute(
            "WITH gone AS ("
            "  DELETE FROM case_households WHERE village = %s AND programme = %s AND status = %s"
            "  AND household_id = %s AND cases = 1 RETURNING 1),"
            " kept AS ("
            "  UPDATE case_households SET cases = cases - 1 WHERE village = %s AND programme = %s"
            "  AND status = %s AND household_id = %s AND cases > 1 RETURNING 1)"
            " UPDATE caseload SET cases = cases - 1,"
            " households = households - (SELECT count(*) FROM gone)"
            " WHERE village = %s AND programme = %s AND status = %s"
            " RETURNING (SELECT count(*) FROM gone) + (SELECT count(*) FROM kept)",
            (*group, household_id, *group, household_id, *group),
        )
        row = cursor.fetchone()
        if row is None or row[0] != 1:
            raise LookupError(f"no {programme}/{status} case of {household_id} in {village}")

    @handles(ReliefCase.ApplicationReceived)
    def received(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "INSERT INTO case_index (case_id, programme, status, village, household_id,"
            " received_county, cross_region, received_at, status_since, last_position)"
            " VALUES (%s, %s, 'received', %s, %s, %s, %s, %s, %s, %s)",
            (
                recorded.originator_id,
                e.programme,
                e.registered_division,
                e.household_id,
                e.received_county,
                e.cross_region,
                e.timestamp,
                e.timestamp,
                recorded.position,
            ),
        )
        self._count(cursor, e.registered_division, e.programme, "received", e.household_id, 1)

    def _move(self, cursor: Cursor[Any], recorded: RecordedEvent, status: CaseStatus) -> None:
        cursor.execute(
            "UPDATE case_index c SET status = %s, status_since = %s, last_position = %s"
            " FROM (SELECT case_id, status AS old_status FROM case_index WHERE case_id = %s"
            " FOR UPDATE) old WHERE c.case_id = old.case_id"
            " RETURNING c.village, c.programme, old.old_status, c.household_id",
            (status.value, recorded.timestamp, recorded.position, recorded.originator_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise LookupError(f"case {recorded.originator_id} was never received")
        village, programme, old_status, household_id = row
        if old_status != status.value:
            self._count(cursor, village, programme, old_status, household_id, -1)
            self._count(cursor, village, programme, status.value, household_id, 1)

    @handles(ReliefCase.Assigned)
    def assigned(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        e = recorded.event
        cursor.execute(
            "UPDATE case_index SET staff_id = %s, contractor_id = %s WHERE case_id = %s"
            " RETURNING status",
            (e.staff_id, e.contractor_id, recorded.originator_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise LookupError(f"case {recorded.originator_id} was never received")
        if row[0] == CaseStatus.RECEIVED.value:
            self._move(cursor, recorded, CaseStatus.UNDER_INVESTIGATION)

    @handles(*STATUS_AFTER)
    def status_changed(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        self._move(cursor, recorded, STATUS_AFTER[type(recorded.event)])


def query_caseload(
    cursor: Cursor[Any],
    *,
    division: str | None = None,
    level: str = "county",
    programme: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Cases by division (rolled up to ``level``), programme and status."""
    width = LEVELS[level]
    where = ["cases > 0"]
    params: list[Any] = []
    if division:
        where.append("village LIKE %s")
        params.append(division + "%")
    if programme:
        where.append("programme = %s")
        params.append(programme)
    if status:
        where.append("status = %s")
        params.append(status)
    clause = " AND ".join(where)
    cursor.execute(
        f"SELECT left(village, {width}) AS division, programme, status, sum(cases)::int,"
        f" count(*) OVER (), sum(households)::int FROM read_models.caseload WHERE {clause}"
        f" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    rows = cursor.fetchall()
    total = rows[0][4] if rows else 0
    if not rows and offset:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM read_models.caseload WHERE {clause}"
            f" GROUP BY left(village, {width}), programme, status) groups",
            params,
        )
        total = cursor.fetchone()[0]  # type: ignore[index]
    items = [
        {
            "division": r[0],
            "programme": r[1],
            "status": r[2],
            "cases": r[3],
            # A household is counted once per village (a household lives in one village).
            "households": r[5],
        }
        for r in rows
    ]
    return items, total


def query_caseload_by(
    cursor: Cursor[Any],
    *,
    key: str,
    division: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Cases per handling staff member (key staff_id) or per contractor (contractor_id)."""
    assert key in ("staff_id", "contractor_id")
    params: list[Any] = []
    where = [f"{key} IS NOT NULL"]
    if division:
        where.append("village LIKE %s")
        params.append(division + "%")
    cursor.execute(
        f"SELECT {key}, programme, status, count(*)::int, count(*) OVER ()"
        f" FROM read_models.case_index WHERE {' AND '.join(where)}"
        f" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    rows = cursor.fetchall()
    items = [{key: str(r[0]), "programme": r[1], "status": r[2], "cases": r[3]} for r in rows]
    return items, (rows[0][4] if rows else 0)


def query_waiting(cursor: Cursor[Any], *, division: str | None, now: Any) -> list[dict[str, Any]]:
    """Applications waiting at each stage before a decision, per county, with their age."""
    params: list[Any] = [now, now]
    where = "status IN ('received', 'under_investigation', 'investigated', 'recommended')"
    if division:
        where += " AND village LIKE %s"
        params.append(division + "%")
    cursor.execute(
        "SELECT left(village, 6), status, count(*)::int,"
        " extract(epoch FROM %s - min(received_at)) / 86400,"
        " extract(epoch FROM %s - min(status_since)) / 86400"
        f" FROM read_models.case_index WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    return [
        {
            "county": r[0],
            "stage": r[1],
            "applications": r[2],
            "oldest_application_days": round(float(r[3]), 1),
            "longest_at_stage_days": round(float(r[4]), 1),
        }
        for r in cursor.fetchall()
    ]


def query_cross_region(cursor: Cursor[Any], *, division: str | None) -> list[dict[str, Any]]:
    """Cross-region applications per county: received here for elsewhere (out) and received
    elsewhere for here (in)."""
    prefix = (division or "") + "%"
    cursor.execute(
        "SELECT county, sum(outbound)::int, sum(inbound)::int FROM ("
        "  SELECT received_county AS county, 1 AS outbound, 0 AS inbound"
        "  FROM read_models.case_index WHERE cross_region"
        "  UNION ALL SELECT left(village, 6), 0, 1 FROM read_models.case_index"
        "  WHERE cross_region) flows WHERE county LIKE %s GROUP BY county ORDER BY county",
        (prefix,),
    )
    return [{"county": r[0], "out": r[1], "in": r[2]} for r in cursor.fetchall()]
