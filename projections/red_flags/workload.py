"""Impossible days: what one staff member recorded in one day cannot all be true.

- ``overlapping_records``: two services of one staff member overlapping in time (by more than
  ``overlap_tolerance_minutes``), or a home visit they made during one of their own services;
- ``service_hours_over_day``: more service hours on one business day (Asia/Shanghai) than
  ``max_service_hours_per_day`` (default 24: more than a day has), each service counted for the
  part of it that falls on that day;
- ``home_visits_over_ceiling``: more home visits on one day than ``max_home_visits_per_day``.

A staff member is a person. The records carry an actor id: the recording actor of a service, the
``visitor_id`` of a home visit (for staff with a StaffMember record, that id is the staff UUID: the
API records the staff record a caller's sign-in is linked to as the actor, and every decision-maker
on a case must be one; a ``visitor_id`` is what the investigator wrote). When the staff record
names its person (the blind index of the resident ID, from the hire or the declaration), every
record of every staff record of that person (two contractors' rosters, a contractor's and a
bureau's) is judged together: scope and key "%P<person id>|day" (``%P`` never begins an escaped
actor id). Actors whose person is unknown are judged alone: scope and key "actor|day". A staff
record that learns its person re-judges its days under both scopes, so the actor's alerts clear and
the person's are raised. A pair of overlapping records belongs to the day the later of the two
starts on, so each pair is reported once. Voided services drop out and clear the alert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.case import ReliefCase
from domain.clock import BUSINESS_TZ, business_date
from domain.staff import StaffMember
from projections.base import RecordedEvent
from projections.payloads import home_visit_of
from projections.red_flags.engine import (
    Finding,
    ScopedRule,
    key_part,
    majority,
    triggered_by,
    unkey_part,
)
from projections.sets import Read, Step

#: For each scope (actor, day): the actor's services starting on the day or the day before
#: (not voided) and their home visits (as visitor) on the day, kept only for scopes where one of
#: the three rules may fire (the candidate violations): a record of the day that starts before
#: an earlier service (in (starts, position) order) ends, by more than the tolerance (an upper
#: bound of its overlap with any of them), more service hours in the window than the ceiling,
#: or more visits than theirs. The rules judge the candidates' records exactly.
_RECORDS = """
WITH s AS (
    SELECT DISTINCT scope, actor, day
    FROM unnest(%(scopes)b::text[], %(actors)b::text[], %(days)b::date[]) AS s(scope, actor, day)
), rec AS (
    -- LATERAL: one index lookup per scope, whatever the planner thinks of fresh tables
    SELECT s.scope, s.day AS scope_day, r.*
    FROM s CROSS JOIN LATERAL (
        SELECT r.position, r.kind, r.starts, coalesce(r.ends, r.starts) AS ends, r.day,
               r.contractor_id, r.case_id, r.actor AS who
        FROM rf_record r
        WHERE r.kind = 'service' AND r.actor = s.actor AND r.void_position IS NULL
          AND r.day BETWEEN s.day - 1 AND s.day
        UNION ALL
        SELECT r.position, r.kind, r.starts, r.starts, r.day, r.contractor_id, r.case_id,
               r.visitor
        FROM rf_record r
        WHERE r.kind = 'investigation' AND r.visitor = s.actor AND r.day = s.day
    ) r
), counted AS (
    SELECT rec.*,
           sum(ends - starts) FILTER (WHERE kind = 'service') OVER w AS service_time,
           count(*) FILTER (WHERE kind = 'investigation') OVER w AS visits,
           day = scope_day AND starts + make_interval(mins => %(tolerance)s) < max(ends)
               FILTER (WHERE kind = 'service') OVER (
                   w ORDER BY starts, position ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
               ) AS overlapping
    FROM rec WINDOW w AS (PARTITION BY scope, scope_day)
), flagged AS (
    SELECT counted.*, bool_or(overlapping) OVER (PARTITION BY scope, scope_day) AS any_overlap
    FROM counted
)
SELECT k.scope, k.scope_day, k.position, k.kind, k.starts, k.ends, k.day,
       k.contractor_id, c.county, k.who
FROM flagged k JOIN rf_case c USING (case_id)
WHERE k.any_overlap
   OR k.service_time > make_interval(hours => %(hours)s)
   OR k.visits > %(visits)s
ORDER BY k.scope, k.scope_day, k.starts, k.position
"""

#: Marks a person scope: key_part never leaves a '%' that is not '%25' or '%7C'.
PERSON = "%P"


def _scope(who: str, day: dt.date) -> str:
    """``who``: an actor id, or PERSON + a person id (already a key part)."""
    part = who if who.startswith(PERSON) else key_part(who)
    return f"{part}|{day.isoformat()}"


def _unscope(scope: str) -> tuple[str, dt.date]:
    who, _, day = scope.rpartition("|")
    return (who if who.startswith(PERSON) else unkey_part(who)), dt.date.fromisoformat(day)


_PEOPLE = (
    "SELECT actor_id, person_id FROM rf_staff WHERE actor_id = ANY(%b::text[])"
    " AND person_id IS NOT NULL"
)


def _people(actors: set[str]) -> Step[dict[str, str]]:
    """Actor id -> PERSON + person id, for the actors whose staff record names its person."""
    if not actors:
        return {}
    # in order: the same actors are the same read (run_together reads it once)
    rows = yield Read(_PEOPLE, (sorted(actors),))
    return {actor: f"{PERSON}{person}" for actor, person in rows}


def _scopes(dated: list[tuple[str, dt.date]]) -> Step[list[str]]:
    """The scopes of (actor, day) pairs: the actor's person's, when known."""
    people = yield from _people({actor for actor, _ in dated})
    return [_scope(people.get(actor, actor), day) for actor, day in dated]


class _StaffDay(ScopedRule):
    subject_kind = "staff"

    @triggered_by(ReliefCase.ServiceRecorded, reads=("provenance", "start", "end"), shared=True)
    def service(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        return (
            yield from _scopes(
                [
                    (r.event.provenance.actor.id, business_date(moment))
                    for r in events
                    for moment in (r.event.start, r.event.end)
                ]
            )
        )

    @triggered_by(ReliefCase.Investigated, reads=("means_test",), shared=True)  # home_visit_of
    def visit(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        visits = [home_visit_of(r.event) for r in events]
        return (yield from _scopes([(visit.visitor, business_date(visit.at)) for visit in visits]))

    @triggered_by(ReliefCase.RecordCorrected, reads=("corrects_version",), shared=True)
    def voided(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        rows = yield Read(
            "SELECT r.actor, r.starts, r.ends FROM rf_record r"
            " JOIN unnest(%b::uuid[], %b::integer[]) AS c(case_id, version)"
            " ON r.case_id = c.case_id AND r.version = c.version"
            " WHERE r.kind = 'service'",
            (
                [r.originator_id for r in events],
                [r.event.corrects_version for r in events],
            ),
        )
        return (
            yield from _scopes(
                [
                    (actor, business_date(moment))
                    for actor, starts, ends in rows
                    for moment in (starts, ends)
                ]
            )
        )

    @triggered_by(StaffMember.Hired, StaffMember.InterestsDeclared, shared=True)
    def person_named(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> Step[list[str]]:
        """A staff record that names its person: its days, under its own scope (to clear)
        and its person's (to judge with the person's other rosters)."""
        actors = {str(r.originator_id) for r in events}
        rows = yield Read(
            "SELECT actor, day, (ends AT TIME ZONE 'Asia/Shanghai')::date FROM rf_record"
            " WHERE kind = 'service' AND actor = ANY(%(a)s)"
            " UNION SELECT visitor, day, day FROM rf_record WHERE visitor = ANY(%(a)s)",
            {"a": list(actors)},
        )
        dated = [(actor, day) for actor, *days in rows for day in days if day]
        return [_scope(actor, day) for actor, day in dated] + (yield from _scopes(dated))

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> Step[dict[str, list[tuple[Any, ...]]]]:
        """The records of each candidate scope, in (starts, position) order:
        (position, kind, starts, ends, day, contractor, county, actor). A person's scope
        reads the records of every actor of the person; an actor's scope, those of the actor
        while its person is unknown (none once known: they are the person's)."""
        parts = [_unscope(scope) for scope in scopes]
        persons = {who[len(PERSON) :] for who, _ in parts if who.startswith(PERSON)}
        actors = sorted({who for who, _ in parts if not who.startswith(PERSON)})
        staff, people = yield [
            Read(
                "SELECT person_id::text, actor_id FROM rf_staff WHERE person_id = ANY(%b::uuid[])",
                (sorted(persons),),
            ),
            Read(_PEOPLE, (actors,)),
        ]
        actors_of: dict[str, list[str]] = {}
        for person, actor in staff:
            actors_of.setdefault(f"{PERSON}{person}", []).append(actor)
        known = {actor: f"{PERSON}{person}" for actor, person in people}
        rows: list[tuple[str, str, dt.date]] = []
        for scope, (who, day) in zip(scopes, parts, strict=True):
            if who.startswith(PERSON):
                rows.extend((scope, actor, day) for actor in actors_of.get(who, []))
            elif who not in known:
                rows.append((scope, who, day))
        records = yield Read(
            _RECORDS,
            {
                "scopes": [scope for scope, _, _ in rows],
                "actors": [actor for _, actor, _ in rows],
                "days": [day for _, _, day in rows],
                "hours": int(self.config.max_service_hours_per_day),
                "visits": self.config.max_home_visits_per_day,
                "tolerance": self.config.overlap_tolerance_minutes,
            },
        )
        found: dict[str, list[tuple[Any, ...]]] = {}
        for row in records:
            found.setdefault(row[0], []).append(tuple(row[2:]))
        return found

    def judge_scope(
        self, cursor: Cursor[Any], scope: str, records: list[tuple[Any, ...]]
    ) -> list[Finding]:
        who, day = _unscope(scope)
        if who.startswith(PERSON):
            actors = sorted({r[7] for r in records})
            who = (
                actors[0]
                if len(actors) == 1
                else f"{actors[0]} (one person on several rosters: {', '.join(actors)})"
            )
        return self.judge_day(scope, who, day, records)

    def judge_day(
        self, scope: str, actor: str, day: dt.date, records: list[tuple[Any, ...]]
    ) -> list[Finding]:
        """Findings of one staff member's day from their records (services from the day
        before, visits of the day)."""
        raise NotImplementedError

    def staff_finding(
        self, scope: str, actor: str, reason: str, records: list[tuple[Any, ...]]
    ) -> Finding:
        contractor: UUID | None = majority([r[5] for r in records])
        return self.finding(
            scope,
            majority([r[7] for r in records]) if scope.startswith(PERSON) else actor,
            reason,
            [r[0] for r in records],
            contractor_id=contractor,
            county=majority([r[6] for r in records]),
        )


class OverlappingRecords(_StaffDay):
    name = "overlapping_records"
    severity = "high"
    description = (
        "One staff member recorded two services overlapping in time, or a home visit during "
        "one of their own services: at least one of the records cannot be true."
    )

    def judge_day(
        self, scope: str, actor: str, day: dt.date, records: list[tuple[Any, ...]]
    ) -> list[Finding]:
        # A partner of a record starting on ``day`` starts at most 24 h earlier.
        tolerance = dt.timedelta(minutes=self.config.overlap_tolerance_minutes)
        pairs = []
        services: list[tuple[Any, ...]] = []  # so far, in (starts, position) order
        for later in records:
            if later[4] == day:
                for earlier in services:  # a visit only ever overlaps a service
                    if self._overlap(earlier, later) > tolerance:
                        pairs.append((earlier, later))
            if later[1] == "service":
                services.append(later)
        if not pairs:
            return []
        described = "; ".join(f"{self._label(a)} and {self._label(b)}" for a, b in pairs[:10]) + (
            f"; and {len(pairs) - 10} more pairs" if len(pairs) > 10 else ""
        )
        involved = sorted({r for pair in pairs for r in pair}, key=lambda r: r[0])
        return [
            self.staff_finding(
                scope,
                actor,
                f"Staff {actor} recorded overlapping work on {day.isoformat()}: {described}.",
                involved,
            )
        ]

    @staticmethod
    def _overlap(a: tuple[Any, ...], b: tuple[Any, ...]) -> dt.timedelta:
        (a_kind, a_start, a_end), (b_kind, b_start, b_end) = a[1:4], b[1:4]
        if a_kind == "investigation" and b_kind == "investigation":
            return dt.timedelta(0)  # two instants: not judged
        if a_kind == "investigation" or b_kind == "investigation":
            # a visit (an instant) inside a service: how deep inside
            (visit, service) = (a, b) if a_kind == "investigation" else (b, a)
            moment = visit[2]
            if not service[2] < moment < service[3]:
                return dt.timedelta(0)
            depth: dt.timedelta = min(moment - service[2], service[3] - moment)
            return depth
        overlap: dt.timedelta = min(a_end, b_end) - max(a_start, b_start)
        return overlap

    @staticmethod
    def _label(record: tuple[Any, ...]) -> str:
        position, kind, starts, ends = record[:4]
        local = starts.astimezone(BUSINESS_TZ)
        if kind == "investigation":
            return f"home visit at {local:%H:%M} (position {position})"
        return f"service {local:%H:%M}-{ends.astimezone(BUSINESS_TZ):%H:%M} (position {position})"


class ServiceHoursOverDay(_StaffDay):
    name = "service_hours_over_day"
    severity = "high"
    description = (
        "One staff member recorded more service hours in one day than the configured ceiling "
        "(by default 24: more than a day has)."
    )

    def judge_day(
        self, scope: str, actor: str, day: dt.date, records: list[tuple[Any, ...]]
    ) -> list[Finding]:
        begin = dt.datetime.combine(day, dt.time.min, BUSINESS_TZ)
        end = begin + dt.timedelta(days=1)
        counted = []
        total = dt.timedelta(0)
        for record in records:
            if record[1] != "service":
                continue
            part = min(record[3], end) - max(record[2], begin)
            if part > dt.timedelta(0):
                total += part
                counted.append(record)
        hours = Decimal(int(total.total_seconds())) / 3600
        ceiling = self.config.max_service_hours_per_day
        if hours <= ceiling:
            return []
        return [
            self.staff_finding(
                scope,
                actor,
                f"Staff {actor} recorded {hours.quantize(Decimal('0.1'))} hours of services on "
                f"{day.isoformat()} in {len(counted)} records, more than {ceiling} hours.",
                counted,
            )
        ]


class HomeVisitsOverCeiling(_StaffDay):
    name = "home_visits_over_ceiling"
    severity = "medium"
    description = (
        "One visitor recorded more household home visits (入户调查) in one day than the "
        "configured ceiling a person can plausibly make."
    )

    def judge_day(
        self, scope: str, actor: str, day: dt.date, records: list[tuple[Any, ...]]
    ) -> list[Finding]:
        visits = sorted(
            (r for r in records if r[1] == "investigation" and r[4] == day), key=lambda r: r[0]
        )
        count = len(visits)
        ceiling = self.config.max_home_visits_per_day
        if count <= ceiling:
            return []
        cited = visits[: self.config.max_evidence]
        return [
            self.staff_finding(
                scope,
                actor,
                f"Visitor {actor} recorded {count} home visits on {day.isoformat()}, more than "
                f"the ceiling of {ceiling} a day."
                + (f" Evidence: the first {len(cited)}." if len(cited) < count else ""),
                cited,
            )
        ]


RULES = (OverlappingRecords, ServiceHoursOverDay, HomeVisitsOverCeiling)
