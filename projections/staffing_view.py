"""The staffing requirement view (issue: projections), computed at any moment from the
staffing projection's history with the band table in force on that day."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from psycopg import Cursor

from domain.clock import BUSINESS_TZ, business_date
from domain.staffing import StaffingPolicy, policy_on
from projections.divisions import NAME_OF

#: Every recorded version of the band tables (projections/policies.py).
POLICY_TABLE = "read_models.staffing_policies"


@dataclass(frozen=True)
class DivisionStaffing:
    division: str
    level: str  # county or township
    households: int
    minimum: int
    government_staff: int
    contractor_staff: int
    shortfall: int
    name: str | None = None  # from the division register

    @property
    def staff(self) -> int:
        return self.government_staff + self.contractor_staff


@dataclass(frozen=True)
class VillageStaffing:
    division: str
    households: int
    coordinators: int
    status: str  # ok, under_staffed, review
    name: str | None = None  # from the division register


@dataclass(frozen=True)
class Snapshot:
    at: dt.datetime
    policy: str | None
    divisions: list[DivisionStaffing]
    villages: list[VillageStaffing]

    def summary(self) -> dict[str, Any]:
        counties = [d for d in self.divisions if d.level == "county"]
        townships = [d for d in self.divisions if d.level == "township"]
        return {
            "at": self.at.isoformat(),
            "policy": self.policy,
            "counties": len(counties),
            "counties_short": sum(1 for d in counties if d.shortfall),
            "county_shortfall": sum(d.shortfall for d in counties),
            "townships": len(townships),
            "townships_short": sum(1 for d in townships if d.shortfall),
            "township_shortfall": sum(d.shortfall for d in townships),
            "total_shortfall": sum(d.shortfall for d in self.divisions),
            "villages_without_coordinator": sum(
                1 for v in self.villages if v.status == "under_staffed"
            ),
            "villages_for_review": sum(1 for v in self.villages if v.status == "review"),
        }


def load_policies(cursor: Cursor[Any], known_at: dt.datetime | None = None) -> list[StaffingPolicy]:
    """The band table from each effective date, by date: its latest correction as the ledger
    knows it now, or, with ``known_at``, as it knew it then (versions recorded by that moment;
    a table adopted later is not known then)."""
    cursor.execute(
        f"SELECT DISTINCT ON (effective_from) document FROM {POLICY_TABLE}"
        " WHERE %(known_at)s::timestamptz IS NULL OR recorded_at <= %(known_at)s"
        " ORDER BY effective_from, revision DESC",
        {"known_at": known_at},
    )
    return [StaffingPolicy.parse(row[0]) for row in cursor.fetchall()]


#: Relief households per county, township and village, counted in the database (a household
#: counts once in each division it lives in, however many active cases it has).
_HOUSEHOLDS = """
    SELECT division, count(*)::int FROM (
      SELECT DISTINCT d.division, a.household_id
      FROM read_models.case_activity a,
        LATERAL (VALUES (left(a.village, 6) COLLATE "C"), (left(a.village, 9) COLLATE "C"),
                        (a.village COLLATE "C")) d(division)
      WHERE a.active_from <= %(at)s AND (a.active_to IS NULL OR a.active_to > %(at)s)
        AND a.village LIKE %(prefix)s
    ) active GROUP BY division
"""

_STAFF = """
    SELECT a.division, m.kind, m.employer
    FROM read_models.staff_assignment a JOIN read_models.staff_member m USING (staff_id)
    WHERE a.assigned_from <= %(at)s AND (a.assigned_to IS NULL OR a.assigned_to > %(at)s)
      AND a.division LIKE %(prefix)s
      AND (m.employer = 'government' OR (
        EXISTS (
          SELECT 1 FROM (
            SELECT t.term_start, t.term_end FROM read_models.contract_terms t
            WHERE t.contract_id = m.contract_id AND t.recorded_at <= %(at)s
              AND t.effective_from <= %(day)s
            ORDER BY t.effective_from DESC, t.recorded_at DESC LIMIT 1
          ) terms WHERE terms.term_start <= %(day)s AND terms.term_end >= %(day)s)
        AND NOT EXISTS (
          SELECT 1 FROM read_models.contract_termination x
          WHERE x.contract_id = m.contract_id AND x.recorded_at <= %(at)s
            AND x.effective_at <= %(at)s)))
"""


_SEEN = """
    SELECT DISTINCT village FROM read_models.case_activity
    WHERE active_from <= %(at)s AND village LIKE %(prefix)s
    UNION SELECT DISTINCT division FROM read_models.staff_assignment
    WHERE assigned_from <= %(at)s AND division LIKE %(prefix)s
"""


#: Every village of the register in force on the day: a village with no household and no
#: coordinator is exactly the one the one-or-two-coordinators rule is about.
_REGISTER_VILLAGES = """
    SELECT code FROM read_models.divisions
    WHERE level = 'village' AND code LIKE %(prefix)s
      AND valid_from <= %(day)s AND (valid_to IS NULL OR valid_to > %(day)s)
"""

_NAMES = """
    SELECT DISTINCT ON (code) code, name FROM read_models.divisions
    WHERE code = ANY(%(codes)s) AND valid_from <= %(day)s
    ORDER BY code, valid_from DESC
"""


def staffing_at(
    cursor: Cursor[Any],
    at: dt.datetime,
    *,
    division: str | None = None,
    policies: list[StaffingPolicy] | None = None,
) -> Snapshot:
    """Relief households, minimums, active staff and shortfall of every county and township
    the ledger has seen within ``division``, and coordinators of every village of the division
    register (and any other the ledger has seen), as it stood at ``at``; each with its name.

    The whole picture, folded in Python: the reference the set-based, paged statements the
    routes serve (``divisions_at``, ``villages_at``, ``summary_at``) are tested against."""
    policies = load_policies(cursor) if policies is None else policies
    day = business_date(at)
    policy = policy_on(policies, day)
    params = {"at": at, "day": day, "prefix": (division or "") + "%"}
    cursor.execute(_HOUSEHOLDS, params)
    households: dict[str, int] = dict(cursor.fetchall())
    staff: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cursor.execute(_STAFF, params)
    for assigned_to, kind, employer in cursor.fetchall():
        key = "coordinator" if kind == "village_coordinator" else employer
        staff[assigned_to][key] += 1
    known = set(households) | set(staff)
    cursor.execute(_SEEN, params)  # seen by then: listed even when nothing is there now
    known.update(row[0] for row in cursor.fetchall() if len(row[0]) in (6, 9, 12))
    if division and len(division) in (6, 9, 12):
        known.add(division)  # asked about by name: shown even with nothing in it
    for code in list(known):  # a village makes its township and county known too
        known.update(code[:width] for width in (6, 9) if len(code) > width)
    cursor.execute(_REGISTER_VILLAGES, params)
    known.update(row[0] for row in cursor.fetchall())
    cursor.execute(_NAMES, {**params, "codes": sorted(known)})
    names = {code: name for code, name in cursor.fetchall()}
    divisions, villages = [], []
    for code in sorted(known):
        if division and not code.startswith(division):
            continue  # an enclosing division, seen only through part of it
        count = households.get(code, 0)
        if len(code) in (6, 9):
            level = "county" if len(code) == 6 else "township"
            table = (
                None
                if policy is None
                else (policy.county if level == "county" else policy.township)
            )
            minimum = table.minimum_for(count) if table else 0
            government = staff[code]["government"] if code in staff else 0
            contractor = staff[code]["contractor"] if code in staff else 0
            divisions.append(
                DivisionStaffing(
                    code,
                    level,
                    count,
                    minimum,
                    government,
                    contractor,
                    max(minimum - government - contractor, 0),
                    names.get(code),
                )
            )
        elif len(code) == 12:
            coordinators = staff[code]["coordinator"] if code in staff else 0
            status = "ok"
            if policy is not None and coordinators < policy.village_minimum:
                status = "under_staffed"
            elif policy is not None and coordinators > policy.village_review_above:
                status = "review"
            villages.append(VillageStaffing(code, count, coordinators, status, names.get(code)))
    return Snapshot(at, policy.name if policy else None, divisions, villages)


#: The register's villages in force on the day within the prefix, walked in code order on the
#: register's index (``low``/``high`` bound the prefix as a range, so the walk starts and ends
#: there).
_VILLAGE_REGISTER = """
    SELECT code FROM read_models.divisions
    WHERE level = 'village' AND code >= %(low)s AND (%(high)s::text IS NULL OR code < %(high)s)
      AND code LIKE %(prefix)s
      AND valid_from <= %(day)s AND (valid_to IS NULL OR valid_to > %(day)s)
"""

#: Villages the ledger had seen by then (a case active, a coordinator assigned, or the one asked
#: about) that the register does not list that day: listed too, after a check per village.
_VILLAGES_UNLISTED = """
    SELECT x.code FROM (
      SELECT village AS code FROM read_models.case_activity
      WHERE active_from <= %(at)s AND village LIKE %(prefix)s
      UNION SELECT division FROM read_models.staff_assignment
      WHERE assigned_from <= %(at)s AND division LIKE %(prefix)s AND length(division) = 12
      UNION SELECT %(asked)s::text WHERE %(asked)s::text IS NOT NULL) x
    WHERE (  -- a probe of the register's index per village, never a hash of the register
      SELECT count(*) FROM (
        SELECT 1 FROM read_models.divisions d
        WHERE d.code = x.code AND d.level = 'village' AND d.valid_from <= %(day)s
          AND (d.valid_to IS NULL OR d.valid_to > %(day)s) LIMIT 1) listed) = 0
"""

#: Coordinators per village at the moment: only villages that have one (a few rows).
_COORDINATED = f"""
    SELECT s.division AS code, count(*)::int AS n FROM ({_STAFF}) s
    WHERE s.kind = 'village_coordinator' AND length(s.division) = 12 GROUP BY s.division
"""

#: A village's status from its coordinators ``n`` and the band table's village bounds.
_VILLAGE_STATUS = """
    CASE WHEN NOT %(has_policy)s THEN 'ok'
         WHEN {n} < %(village_minimum)s THEN 'under_staffed'
         WHEN {n} > %(review_above)s THEN 'review'
         ELSE 'ok' END
"""


def _prefix_range(prefix: str) -> tuple[str, str | None]:
    """(low, high) with every code starting with the digits ``prefix`` in [low, high)."""
    if not prefix or set(prefix) == {"9"}:
        return prefix, None
    digits = prefix.rstrip("9")
    return prefix, digits[:-1] + str(int(digits[-1]) + 1)


def _village_params(
    cursor: Cursor[Any],
    at: dt.datetime,
    division: str | None,
    policies: list[StaffingPolicy] | None,
) -> tuple[dict[str, Any], StaffingPolicy | None]:
    policies = load_policies(cursor) if policies is None else policies
    day = business_date(at)
    policy = policy_on(policies, day)
    low, high = _prefix_range(division or "")
    params = {
        "at": at,
        "day": day,
        "prefix": (division or "") + "%",
        "low": low,
        "high": high,
        "asked": division if division and len(division) == 12 else None,
        "has_policy": policy is not None,
        "village_minimum": policy.village_minimum if policy else 0,
        "review_above": policy.village_review_above if policy else 0,
    }
    return params, policy


def _status_of(coordinators: int, params: dict[str, Any]) -> str:
    if not params["has_policy"]:
        return "ok"
    if coordinators < params["village_minimum"]:
        return "under_staffed"
    return "review" if coordinators > params["review_above"] else "ok"


def village_totals(cursor: Cursor[Any], params: dict[str, Any]) -> dict[str | None, int]:
    """How many villages (``None``) and how many of each status, counted without listing
    them: a village with no coordinator has the status of 0, and only the few with one are
    judged one by one."""
    cursor.execute(
        f"""WITH k AS MATERIALIZED ({_COORDINATED}),
        unlisted AS MATERIALIZED ({_VILLAGES_UNLISTED})
        SELECT (SELECT count(*) FROM ({_VILLAGE_REGISTER}) r) + (SELECT count(*) FROM unlisted),
          k.status, count(*)
        FROM (
          SELECT {_VILLAGE_STATUS.format(n="k.n")} AS status FROM k
          WHERE k.code LIKE %(prefix)s AND (
            k.code IN (SELECT code FROM unlisted) OR EXISTS (
              SELECT 1 FROM read_models.divisions d
              WHERE d.code = k.code AND d.level = 'village' AND d.valid_from <= %(day)s
                AND (d.valid_to IS NULL OR d.valid_to > %(day)s)))
          UNION ALL SELECT NULL) k
        GROUP BY k.status""",
        params,
    )
    everything, judged = 0, {}
    for total, status, count in cursor.fetchall():
        everything = int(total)
        if status is not None:
            judged[status] = int(count)
    totals: dict[str | None, int] = {None: everything}
    uncoordinated = everything - sum(judged.values())
    for status in ("ok", "under_staffed", "review"):
        totals[status] = judged.get(status, 0)
    totals[_status_of(0, params)] += uncoordinated
    return totals


def villages_at(
    cursor: Cursor[Any],
    at: dt.datetime,
    *,
    division: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    policies: list[StaffingPolicy] | None = None,
) -> tuple[str | None, list[dict[str, Any]], int]:
    """The villages ``staffing_at`` lists (the register's in force that day, any other the
    ledger has seen by then, the one asked about), with households, coordinators and status as
    they stood at ``at``: one page in code order with the total.

    Without reading every village of the province: the page walks the register's index in
    code order, counting each village's coordinators as it goes, and stops when the page is
    full (a status a village without coordinators cannot have is found from the few villages
    that have one instead); the total comes from ``village_totals``."""
    params, policy = _village_params(cursor, at, division, policies)
    params.update(status=status, limit=limit, offset=offset)
    one_village = _STAFF.replace("a.division LIKE %(prefix)s", "a.division = v.code")
    if status is None or status == _status_of(0, params):
        cursor.execute(
            f"""SELECT v.code, c.n FROM (
              ({_VILLAGE_REGISTER} ORDER BY code)
              UNION ALL (SELECT code FROM ({_VILLAGES_UNLISTED}) u ORDER BY code)) v
            CROSS JOIN LATERAL (
              SELECT count(*)::int AS n FROM ({one_village}) s
              WHERE s.kind = 'village_coordinator') c
            WHERE %(status)s::text IS NULL
               OR {_VILLAGE_STATUS.format(n="c.n")} = %(status)s::text
            ORDER BY v.code LIMIT %(limit)s OFFSET %(offset)s""",
            params,
        )
    else:  # only villages with coordinators can have it
        cursor.execute(
            f"""WITH k AS MATERIALIZED ({_COORDINATED})
            SELECT k.code, k.n FROM k
            WHERE k.code LIKE %(prefix)s
              AND {_VILLAGE_STATUS.format(n="k.n")} = %(status)s::text
              AND (k.code IN (SELECT code FROM ({_VILLAGES_UNLISTED}) u) OR EXISTS (
                SELECT 1 FROM read_models.divisions d
                WHERE d.code = k.code AND d.level = 'village' AND d.valid_from <= %(day)s
                  AND (d.valid_to IS NULL OR d.valid_to > %(day)s)))
            ORDER BY k.code LIMIT %(limit)s OFFSET %(offset)s""",
            params,
        )
    page = cursor.fetchall()
    codes = [code for code, _ in page]
    cursor.execute(
        """SELECT village, count(DISTINCT household_id)::int FROM read_models.case_activity
        WHERE village = ANY(%(codes)s) AND active_from <= %(at)s
          AND (active_to IS NULL OR active_to > %(at)s)
        GROUP BY village""",
        {"codes": codes, "at": at},
    )
    households = dict(cursor.fetchall())
    cursor.execute(_NAMES, {"day": params["day"], "codes": codes})
    names = {code: name for code, name in cursor.fetchall()}
    items = [
        vars(
            VillageStaffing(
                code, households.get(code, 0), n, _status_of(n, params), names.get(code)
            )
        )
        for code, n in page
    ]
    total = village_totals(cursor, params)[status]
    return (policy.name if policy else None), items, total


#: Every county and township ``staffing_at`` lists within the prefix (seen through a case
#: active by then, an assignment made by then, or asked about by code), with its relief
#: households, minimum from the bands in force and active staff as they stood at ``at``.
_DIVISIONS_AT = f"""
    WITH cases AS (
      SELECT left(village, 6) AS county, left(village, 9) AS township, household_id,
             (active_to IS NULL OR active_to > %(at)s) AS active
      FROM read_models.case_activity
      WHERE active_from <= %(at)s AND village LIKE %(prefix)s),
    households AS (
      SELECT coalesce(township, county) COLLATE "C" AS division,
             count(DISTINCT household_id) FILTER (WHERE active)::int AS households
      FROM cases GROUP BY GROUPING SETS ((county), (township))),
    staff AS (
      SELECT s.division,
        count(*) FILTER (WHERE s.employer = 'government')::int AS government,
        count(*) FILTER (WHERE s.employer = 'contractor')::int AS contractor
      FROM ({_STAFF}) s
      WHERE length(s.division) IN (6, 9) AND s.kind <> 'village_coordinator'
      GROUP BY s.division),
    -- Every division seen (households, any staff assignment's county and township, the one
    -- asked) with its counts, in one grouping of one list: joined instead, the planner took
    -- each division to match ~130 household rows (it cannot know GROUPING SETS gives one)
    -- and chose a nested loop over them, 3.5 million comparisons at 1M events.
    d AS (
      SELECT u.division, CASE length(u.division) WHEN 6 THEN 'county' ELSE 'township' END
               AS level,
             max(u.households)::int AS households, max(u.government)::int AS government,
             max(u.contractor)::int AS contractor
      FROM (
        SELECT division, households, 0 AS government, 0 AS contractor FROM households
        UNION ALL SELECT left(a.division, w.width) COLLATE "C", 0, 0, 0
        FROM read_models.staff_assignment a, (VALUES (6), (9)) w(width)
        WHERE a.assigned_from <= %(at)s AND a.division LIKE %(prefix)s
          AND length(a.division) >= w.width
        UNION ALL SELECT %(asked)s::text COLLATE "C", 0, 0, 0 WHERE %(asked)s::text IS NOT NULL
        UNION ALL SELECT division COLLATE "C", 0, government, contractor FROM staff) u
      WHERE u.division LIKE %(prefix)s
      GROUP BY u.division),
    r AS (
      SELECT d.division, d.level, d.households, b.minimum, d.government, d.contractor,
             greatest(b.minimum - d.government - d.contractor, 0)::int AS shortfall
      FROM d CROSS JOIN LATERAL (
        SELECT coalesce(max(m), 0)::int AS minimum FROM (
          SELECT unnest(CASE WHEN d.level = 'county' THEN %(county_from)s::int[]
                        ELSE %(township_from)s::int[] END) AS f,
                 unnest(CASE WHEN d.level = 'county' THEN %(county_minimum)s::int[]
                        ELSE %(township_minimum)s::int[] END) AS m) band
        WHERE band.f <= d.households) b)
"""


def _at_params(
    cursor: Cursor[Any],
    at: dt.datetime,
    division: str | None,
    policies: list[StaffingPolicy] | None,
) -> tuple[dict[str, Any], StaffingPolicy | None]:
    policies = load_policies(cursor) if policies is None else policies
    day = business_date(at)
    policy = policy_on(policies, day)
    params = {
        "at": at,
        "day": day,
        "prefix": (division or "") + "%",
        "asked": division if division and len(division) in (6, 9) else None,
        **_bands(policy),
    }
    return params, policy


def divisions_at(
    cursor: Cursor[Any],
    at: dt.datetime,
    *,
    division: str | None = None,
    level: str | None = None,
    short_only: bool = False,
    limit: int = 100,
    offset: int = 0,
    policies: list[StaffingPolicy] | None = None,
) -> tuple[str | None, list[dict[str, Any]], int]:
    """The counties and townships ``staffing_at`` lists, as they stood at ``at``: one page in
    code order with the total, counted in one statement (no village is read, no province
    computed in Python), named as the register named them that day."""
    params, policy = _at_params(cursor, at, division, policies)
    cursor.execute(
        f"""{_DIVISIONS_AT}
        SELECT r.*, count(*) OVER () FROM r
        WHERE (%(level)s::text IS NULL OR r.level = %(level)s::text)
          AND (NOT %(short_only)s OR r.shortfall > 0)
        ORDER BY r.division COLLATE "C" LIMIT %(limit)s OFFSET %(offset)s""",
        {**params, "level": level, "short_only": short_only, "limit": limit, "offset": offset},
    )
    rows = cursor.fetchall()
    total = int(rows[0][7]) if rows else 0
    if not rows and offset:  # past the end: the total still
        total = divisions_at(
            cursor,
            at,
            division=division,
            level=level,
            short_only=short_only,
            limit=1,
            policies=[policy] if policy else [],
        )[2]
    cursor.execute(_NAMES, {"day": params["day"], "codes": [r[0] for r in rows]})
    names = {code: name for code, name in cursor.fetchall()}
    items = [
        division_row(DivisionStaffing(r[0], r[1], r[2], r[3], r[4], r[5], r[6], names.get(r[0])))
        for r in rows
    ]
    return (policy.name if policy else None), items, total


def summary_at(
    cursor: Cursor[Any],
    at: dt.datetime,
    *,
    division: str | None = None,
    policies: list[StaffingPolicy] | None = None,
) -> dict[str, Any]:
    """``staffing_at(...).summary()`` in two statements: counties and townships short and by
    how much, villages without a coordinator or above the review bound, as at ``at``."""
    params, policy = _at_params(cursor, at, division, policies)
    query = f"{_DIVISIONS_AT} {_SHORT_COUNTS} FROM r"
    village_params, _ = _village_params(cursor, at, division, [policy] if policy else [])
    villages = village_totals(cursor, village_params)
    return _summary(cursor, query, params, at, policy, villages)


#: How many counties and townships, how many short, and by how much, over rows ``r``/``c``.
_SHORT_COUNTS = """
    SELECT
      count(*) FILTER (WHERE level = 'county'),
      count(*) FILTER (WHERE level = 'county' AND shortfall > 0),
      coalesce(sum(shortfall) FILTER (WHERE level = 'county'), 0),
      count(*) FILTER (WHERE level = 'township'),
      count(*) FILTER (WHERE level = 'township' AND shortfall > 0),
      coalesce(sum(shortfall) FILTER (WHERE level = 'township'), 0)
"""


def _summary(
    cursor: Cursor[Any],
    query: str,
    params: dict[str, Any],
    at: dt.datetime,
    policy: StaffingPolicy | None,
    villages: dict[str | None, int],
) -> dict[str, Any]:
    """The summary from ``query`` (``_SHORT_COUNTS`` over the divisions) and the villages'
    totals per status. Planned afresh each time (``_CUSTOM_PLAN``)."""
    cursor.execute(query, params, prepare=_CUSTOM_PLAN)
    row = cursor.fetchone()
    assert row is not None
    return {
        "at": at.isoformat(),
        "policy": policy.name if policy else None,
        "counties": row[0],
        "counties_short": row[1],
        "county_shortfall": int(row[2]),
        "townships": row[3],
        "townships_short": row[4],
        "township_shortfall": int(row[5]),
        "total_shortfall": int(row[2]) + int(row[5]),
        "villages_without_coordinator": villages["under_staffed"],
        "villages_for_review": villages["review"],
    }


def division_row(row: DivisionStaffing) -> dict[str, Any]:
    # Field by field: ``dataclasses.asdict`` deep-copies each value, and took a seventh of a
    # 100-row staffing page's CPU.
    return {
        "division": row.division,
        "level": row.level,
        "households": row.households,
        "minimum": row.minimum,
        "government_staff": row.government_staff,
        "contractor_staff": row.contractor_staff,
        "shortfall": row.shortfall,
        "name": row.name,
        "staff": row.staff,
    }


def change_points(
    cursor: Cursor[Any], code: str, until: dt.datetime, limit: int = 1000
) -> list[dt.datetime]:
    """Moments at which the staffing of ``code`` may have changed, newest first."""
    cursor.execute(
        """SELECT t FROM (
             SELECT active_from AS t FROM read_models.case_activity WHERE village LIKE %(p)s
             UNION SELECT active_to FROM read_models.case_activity WHERE village LIKE %(p)s
             UNION SELECT assigned_from FROM read_models.staff_assignment WHERE division = %(c)s
             UNION SELECT assigned_to FROM read_models.staff_assignment WHERE division = %(c)s
             UNION SELECT x.effective_at FROM read_models.contract_termination x
             UNION SELECT x.recorded_at FROM read_models.contract_termination x
             UNION SELECT t.recorded_at FROM read_models.contract_terms t
             UNION SELECT (t.effective_from::timestamp AT TIME ZONE 'Asia/Shanghai')
               FROM read_models.contract_terms t WHERE t.effective_from > '0001-01-01'
             UNION SELECT ((t.term_end + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')
               FROM read_models.contract_terms t
             UNION SELECT (p.effective_from::timestamp AT TIME ZONE 'Asia/Shanghai')
               FROM read_models.staffing_policies p
           ) points WHERE t IS NOT NULL AND t <= %(until)s ORDER BY t DESC LIMIT %(n)s""",
        {"p": code + "%", "c": code, "until": until, "n": limit},
    )
    return [row[0] for row in cursor.fetchall()]


def division_at(
    cursor: Cursor[Any],
    code: str,
    at: dt.datetime,
    *,
    policies: list[StaffingPolicy] | None = None,
) -> tuple[str | None, dict[str, Any]]:
    """One county (6 digits) or township (9) as it stood at ``at``, and the band table then:
    listed even with nothing in it (it is asked about by code)."""
    level = "county" if len(code) == 6 else "township"
    policy, rows, _ = divisions_at(
        cursor, at, division=code, level=level, limit=1, policies=policies
    )
    return policy, rows[0]


def short_since(
    cursor: Cursor[Any], code: str, at: dt.datetime, policies: list[StaffingPolicy]
) -> dt.datetime | None:
    """When the current shortfall of ``code`` began (None when it is not short at ``at``)."""

    def shortfall(moment: dt.datetime) -> int:
        return int(division_at(cursor, code, moment, policies=policies)[1]["shortfall"])

    if not shortfall(at):
        return None
    since = None
    for point in change_points(cursor, code, at):
        if shortfall(point):
            since = point
        else:
            break
    return since


def month_ends(now: dt.datetime, months: int) -> list[dt.datetime]:
    """The last moments of the ``months`` months before ``now``'s month, oldest first."""
    local = now.astimezone(BUSINESS_TZ)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ends = []
    for _ in range(months):
        ends.append(first - dt.timedelta(microseconds=1))
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return list(reversed(ends))


# The current position, from the rows the staffing projection keeps ---------------------------

#: The contracts in force at the moment, judged once (not once per staff member) in one pass
#: over the terms: each contract's terms in force that day as known then (the latest effective
#: by then, its latest correction), covering the day, and no termination in effect.
_IN_FORCE = """
    in_force AS MATERIALIZED (
      SELECT t.contract_id FROM (
        SELECT DISTINCT ON (contract_id) contract_id, term_start, term_end
        FROM read_models.contract_terms
        WHERE recorded_at <= %(at)s AND effective_from <= %(day)s
        ORDER BY contract_id, effective_from DESC, recorded_at DESC) t
      WHERE t.term_start <= %(day)s AND t.term_end >= %(day)s
        AND NOT EXISTS (
          SELECT 1 FROM read_models.contract_termination x
          WHERE x.contract_id = t.contract_id AND x.recorded_at <= %(at)s
            AND x.effective_at <= %(at)s))
"""

#: The few counties and townships whose staff now differ from the open assignments kept on
#: their rows (``staffing_divisions``), by how many government and contractor staff: less the
#: staff a contract out of force pays (found from the contracts out of force), plus those whose
#: removal is dated ahead (found on the assignments ending ahead); coordinators left out.
_STAFF_ADJUSTED = """
    adjusted AS MATERIALIZED (
      SELECT x.division COLLATE "C" AS division, sum(x.g)::int AS government,
        sum(x.c)::int AS contractor
      FROM (
        SELECT a.division, 0 AS g, -1 AS c
        FROM (SELECT DISTINCT contract_id FROM read_models.contract_terms
              EXCEPT SELECT contract_id FROM in_force) o
        JOIN read_models.staff_member m ON m.contract_id = o.contract_id
        JOIN read_models.staff_assignment a ON a.staff_id = m.staff_id
        WHERE m.kind <> 'village_coordinator' AND a.assigned_to IS NULL
        UNION ALL
        SELECT a.division, (m.employer = 'government')::int,
          (m.employer = 'contractor' AND f.contract_id IS NOT NULL)::int
        FROM read_models.staff_assignment a JOIN read_models.staff_member m USING (staff_id)
        LEFT JOIN in_force f ON f.contract_id = m.contract_id
        WHERE a.assigned_to > %(at)s AND a.assigned_from <= %(at)s
          AND m.kind <> 'village_coordinator'
      ) x
      WHERE length(x.division) IN (6, 9) AND x.division LIKE %(prefix)s
      GROUP BY 1)
"""


#: The counties' and townships' statements are never prepared: the generic plan a prepared
#: statement falls back to after five runs (not knowing the prefix, the bands, the moment) took
#: 36 ms at the 1M bench's province where a plan for the values takes 7 ms, planning included.
_CUSTOM_PLAN = False


def _bands(policy: StaffingPolicy | None) -> dict[str, Any]:
    """The band table in force as arrays the query reads (no policy: minimums of 0)."""
    params: dict[str, Any] = {}
    for level in ("county", "township"):
        table = getattr(policy, level) if policy else None
        bands = table.bands if table else []
        params[f"{level}_from"] = [b.households_from for b in bands] or [0]
        params[f"{level}_minimum"] = [b.minimum for b in bands] or [0]
    return params


def _minimum(policy: StaffingPolicy | None) -> str:
    """The minimum staff of a county or township ``d`` from the band table in force, as an
    expression: the highest minimum of the bands starting at or below its households (the
    first band starts at 0; minimums never fall), 0 with no table."""
    levels = []
    for level in ("county", "township"):
        table = getattr(policy, level) if policy else None
        bands = table.bands if table else []
        cases = ", ".join(
            f"CASE WHEN d.households >= {int(b.households_from)} THEN {int(b.minimum)} END"
            for b in bands
        )
        levels.append(f"coalesce(greatest({cases}), 0)" if bands else "0")
    return f"(CASE WHEN d.level = 'county' THEN {levels[0]} ELSE {levels[1]} END)::int"


def _current_rows(
    division: str | None, level: str | None, policy: StaffingPolicy | None, *, paged: bool = False
) -> str:
    """Every county and township (or one level) within the prefix, or with ``paged`` one page
    of them in code order (an index range, ``%(limit)s``/``%(offset)s``) with their number:
    households and staff kept by the projection, the staff corrected for the few counted
    differently now (``_STAFF_ADJUSTED``), minimum from the bands, shortfall. A division asked
    about by name is listed even with nothing in it."""
    levels = "('county', 'township')" if level is None else "(%(level)s)"
    named = ""
    if division and len(division) in (6, 9):
        named = (
            " UNION ALL SELECT %(division)s, %(named_level)s, 0, 0, 0 WHERE NOT EXISTS ("
            " SELECT 1 FROM read_models.staffing_divisions WHERE division = %(division)s)"
            f" AND %(named_level)s IN {levels}"
        )
    rows = "(SELECT * FROM d ORDER BY division LIMIT %(limit)s OFFSET %(offset)s)" if paged else "d"
    total = ", (SELECT count(*) FROM d) AS total" if paged else ""
    return f"""
      WITH {_IN_FORCE}, {_STAFF_ADJUSTED},
      d AS NOT MATERIALIZED (
        SELECT division, level, households, government, contractor
        FROM read_models.staffing_divisions
        WHERE level IN {levels} AND division LIKE %(prefix)s{named})
      SELECT x.*, greatest(x.minimum - x.government_staff - x.contractor_staff, 0)::int
          AS shortfall{total}
      FROM (
        SELECT d.division, d.level, d.households, {_minimum(policy)} AS minimum,
          (d.government + coalesce(j.government, 0))::int AS government_staff,
          (d.contractor + coalesce(j.contractor, 0))::int AS contractor_staff
        FROM {rows} d LEFT JOIN adjusted j ON j.division = d.division) x
    """


def _current_params(
    cursor: Cursor[Any],
    at: dt.datetime,
    division: str | None,
    level: str | None,
    policies: list[StaffingPolicy] | None,
) -> tuple[dict[str, Any], StaffingPolicy | None]:
    policies = load_policies(cursor) if policies is None else policies
    day = business_date(at)
    policy = policy_on(policies, day)
    params = {
        "at": at,
        "day": day,
        "prefix": (division or "") + "%",
        "division": division,
        "level": level,
        "named_level": "county" if division and len(division) == 6 else "township",
        **_bands(policy),
    }
    return params, policy


def current_staffing(
    cursor: Cursor[Any],
    at: dt.datetime,
    *,
    division: str | None = None,
    level: str | None = None,
    short_only: bool = False,
    limit: int = 100,
    offset: int = 0,
    policies: list[StaffingPolicy] | None = None,
) -> tuple[str | None, list[dict[str, Any]], int]:
    """The counties and townships now (``at`` is the present moment: households are the
    projection's current rows), in code order, one page, with the total; and the policy."""
    params, policy = _current_params(cursor, at, division, level, policies)
    rows_now = _current_rows(division, level, policy)
    if short_only:  # every row judged (a scan of the kept rows), the page of the short ones
        query = f"""SELECT c.*, count(*) OVER () FROM ({rows_now}) c WHERE c.shortfall > 0
            ORDER BY c.division LIMIT %(limit)s OFFSET %(offset)s"""
    else:  # the page an index range in code order, its rows alone judged
        paged = _current_rows(division, level, policy, paged=True)
        query = f"SELECT c.* FROM ({paged}) c ORDER BY c.division"
    # Beside each row of the page, the division's name (no round trip of its own).
    cursor.execute(
        f"SELECT q.*, {NAME_OF.format(code='q.division')} FROM ({query}) q ORDER BY q.division",
        {**params, "limit": limit, "offset": offset},
        prepare=_CUSTOM_PLAN,
    )
    rows = cursor.fetchall()
    total = rows[0][7] if rows else 0
    if not rows and offset:  # past the end: the total still
        where = "WHERE c.shortfall > 0" if short_only else ""
        cursor.execute(f"SELECT count(*) FROM ({rows_now}) c {where}", params, prepare=_CUSTOM_PLAN)
        total = cursor.fetchone()[0]  # type: ignore[index]
    items = [
        division_row(DivisionStaffing(r[0], r[1], r[2], r[3], r[4], r[5], r[6], name=r[8]))
        for r in rows
    ]
    return (policy.name if policy else None), items, total


def current_summary(
    cursor: Cursor[Any], at: dt.datetime, *, division: str | None = None
) -> dict[str, Any]:
    """How many counties and townships are short now, and by how much, and the villages
    without a coordinator or with more than the review bound: all from the rows the
    projection keeps (``current_village_totals``)."""
    params, policy = _current_params(cursor, at, division, None, None)
    query = f"{_SHORT_COUNTS} FROM ({_current_rows(division, None, policy)}) c"
    village_params, _ = _village_params(cursor, at, division, [policy] if policy else [])
    villages = current_village_totals(cursor, village_params)
    return _summary(cursor, query, params, at, policy, villages)


# The villages now, from the rows the staffing projection keeps -------------------------------

#: What the kept rows say about the villages within the prefix, in one statement:
#: ``kept``: how many villages have each number of coordinators (the counts per county, or
#: within a county its villages); ``hidden``: register villages not in force that day and never
#: seen (not listed); ``adjusted``: villages whose coordinators at the moment differ from the
#: open assignments kept, by ``d`` (less those a contract out of force pays, plus those whose
#: removal is dated ahead), found from the contracts out of force and the assignments ending
#: ahead, each on its index; ``asked``: the village asked about, when no row is kept for it.
_VILLAGES_NOW = """
    WITH {contracts},
    adjusted AS (
      SELECT x.village, sum(x.d)::int AS d FROM (
        SELECT a.division AS village, -1 AS d
        FROM (SELECT DISTINCT contract_id FROM read_models.contract_terms
              EXCEPT SELECT contract_id FROM in_force) o
        JOIN read_models.staff_member m ON m.contract_id = o.contract_id
        JOIN read_models.staff_assignment a ON a.staff_id = m.staff_id
        WHERE m.kind = 'village_coordinator' AND a.assigned_to IS NULL
        UNION ALL
        SELECT a.division, 1
        FROM read_models.staff_assignment a JOIN read_models.staff_member m USING (staff_id)
        WHERE a.assigned_to > %(at)s AND a.assigned_from <= %(at)s
          AND m.kind = 'village_coordinator'
          AND (m.contract_id IS NULL OR m.contract_id IN (SELECT contract_id FROM in_force))
      ) x
      WHERE length(x.village) = 12 AND x.village >= %(low)s
        AND (%(high)s::text IS NULL OR x.village < %(high)s)
      GROUP BY x.village HAVING sum(x.d) <> 0)
    SELECT 'kept', NULL, coordinators, n FROM ({counted}) kept
    UNION ALL SELECT 'hidden', v.village, v.coordinators, 0
      FROM read_models.staffing_villages v
      WHERE NOT v.seen AND (v.listed_to <= %(day)s OR v.listed_from > %(day)s)
        AND v.village >= %(low)s AND (%(high)s::text IS NULL OR v.village < %(high)s)
        AND v.village IS DISTINCT FROM %(asked)s::text
    UNION ALL SELECT 'adjusted', v.village, v.coordinators, a.d
      FROM adjusted a JOIN read_models.staffing_villages v ON v.village = a.village COLLATE "C"
    UNION ALL SELECT 'asked', %(asked)s::text, 0, 1
      WHERE %(asked)s::text IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM read_models.staffing_villages WHERE village = %(asked)s::text)
"""

#: Villages per number of coordinators: the counts per county (a county, a prefecture, the
#: province: a few rows), or a township's villages.
_COUNTED_BY_COUNTY = """
    SELECT coordinators, sum(villages)::int AS n FROM read_models.staffing_village_counts
    WHERE county >= %(low)s AND (%(high)s::text IS NULL OR county < %(high)s)
    GROUP BY coordinators
"""
_COUNTED_BY_VILLAGE = """
    SELECT coordinators, count(*)::int AS n FROM read_models.staffing_villages
    WHERE village >= %(low)s AND (%(high)s::text IS NULL OR village < %(high)s)
    GROUP BY coordinators
"""


@dataclass
class _VillagesNow:
    """The villages within a prefix now, from the kept rows: how many have each number of
    coordinators, the ones not listed, the ones counted anew, the one asked about."""

    villages: dict[int, int]
    skipped: list[str]  # hidden or adjusted: left out of the kept rows' walk
    extra: dict[str, int]  # adjusted and asked: village -> coordinators now

    def totals(self, params: dict[str, Any]) -> dict[str | None, int]:
        totals: dict[str | None, int] = {None: sum(self.villages.values())}
        for status in ("ok", "under_staffed", "review"):
            totals[status] = 0
        for coordinators, n in self.villages.items():
            totals[_status_of(coordinators, params)] += n
        return totals


def _villages_now(cursor: Cursor[Any], params: dict[str, Any]) -> _VillagesNow:
    counted = _COUNTED_BY_COUNTY if len(params["low"]) <= 6 else _COUNTED_BY_VILLAGE
    cursor.execute(_VILLAGES_NOW.format(contracts=_IN_FORCE, counted=counted), params)
    now = _VillagesNow(defaultdict(int), [], {})
    for what, village, coordinators, n in cursor.fetchall():
        if what == "kept":
            now.villages[coordinators] += n
        elif what == "hidden":
            now.villages[coordinators] -= 1
            now.skipped.append(village)
        elif what == "adjusted":  # counted at its number now
            now.villages[coordinators] -= 1
            now.villages[coordinators + n] += 1
            now.skipped.append(village)
            now.extra[village] = coordinators + n
        else:  # asked about, no row kept: none there
            now.villages[0] += 1
            now.extra[village] = 0
    return now


def current_village_totals(cursor: Cursor[Any], params: dict[str, Any]) -> dict[str | None, int]:
    """How many villages are listed now (``None``) and how many of each status: the kept
    counts, less the register's villages not in force that day, with the few villages whose
    coordinators differ at the moment moved to their number now."""
    return _villages_now(cursor, params).totals(params)


def _coordinator_ranges(status: str | None, params: dict[str, Any]) -> list[tuple[int, int | None]]:
    """The numbers of coordinators a village of ``status`` has under the band table in force,
    as ranges [low, high] (high None: no bound); no range when no village can have it."""
    if status is None:
        return [(0, None)]
    if not params["has_policy"]:
        return [(0, None)] if status == "ok" else []
    minimum, review_above = params["village_minimum"], params["review_above"]
    if status == "under_staffed":
        return [(0, minimum - 1)] if minimum > 0 else []
    if status == "ok":
        low = max(minimum, 0)
        return [(low, review_above)] if review_above >= low else []
    return [(max(minimum, review_above + 1, 0), None)]


#: A bounded range of at most this many values is walked a value at a time, each in code order
#: on the coordinators index (merged); a wider one is read whole and sorted.
_VALUES_WALKED = 16


def _village_branches(ranges: list[tuple[int, int | None]]) -> list[str]:
    """Statements each giving the kept villages within the prefix with one number (or a
    range) of coordinators, in code order, the skipped ones left out, up to the page's end."""
    within = (
        "village >= %(low)s AND (%(high)s::text IS NULL OR village < %(high)s)"
        " AND village <> ALL(%(skipped)s::text[])"
    )
    conditions = []
    for low, high in ranges:
        if low == 0 and high is None:
            conditions.append(within)
        elif high is not None and high - low < _VALUES_WALKED:
            conditions += [f"coordinators = {n} AND {within}" for n in range(low, high + 1)]
        elif high is None:
            conditions.append(f"coordinators >= {int(low)} AND {within}")
        else:
            conditions.append(f"coordinators BETWEEN {int(low)} AND {int(high)} AND {within}")
    return [
        "(SELECT village, coordinators FROM read_models.staffing_villages"
        f" WHERE {condition} ORDER BY village LIMIT %(end)s)"
        for condition in conditions
    ]


def current_villages(
    cursor: Cursor[Any],
    at: dt.datetime,
    *,
    division: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    policies: list[StaffingPolicy] | None = None,
) -> tuple[str | None, list[dict[str, Any]], int]:
    """``villages_at`` now (``at`` is the present moment), from the rows the projection keeps:
    a status is ranges of the coordinators index walked in code order (the band table in force
    is compared when read), the few villages whose coordinators differ at the moment (a
    contract out of force, a removal dated ahead) are judged one by one, and the total comes
    from the kept counts. Two statements, whatever the size of the province."""
    params, policy = _village_params(cursor, at, division, policies)
    now = _villages_now(cursor, params)
    extra = {
        village: n
        for village, n in now.extra.items()
        if status is None or _status_of(n, params) == status
    }
    branches = _village_branches(_coordinator_ranges(status, params))
    page: list[tuple[Any, ...]] = []
    if branches or extra:
        walked = " UNION ALL ".join(
            [*branches, "SELECT * FROM unnest(%(extra)s::text[], %(extra_n)s::int[])"]
        )
        cursor.execute(
            f"""SELECT p.village, p.n, coalesce(h.households, 0), named.name FROM (
              SELECT w.village COLLATE "C" AS village, w.n FROM ({walked}) w(village, n)
              ORDER BY 1 LIMIT %(limit)s OFFSET %(offset)s) p
            LEFT JOIN read_models.staffing_villages h ON h.village = p.village
            LEFT JOIN LATERAL (
              SELECT d.name FROM read_models.divisions d
              WHERE d.code = p.village COLLATE "default" AND d.valid_from <= %(day)s
              ORDER BY d.valid_from DESC LIMIT 1) named ON true
            ORDER BY p.village""",
            {
                **params,
                "skipped": now.skipped,
                "extra": list(extra),
                "extra_n": list(extra.values()),
                "limit": limit,
                "offset": offset,
                "end": limit + offset,
            },
        )
        page = cursor.fetchall()
    items = [
        vars(VillageStaffing(code, households, n, _status_of(n, params), name))
        for code, n, households, name in page
    ]
    return (policy.name if policy else None), items, now.totals(params)[status]
