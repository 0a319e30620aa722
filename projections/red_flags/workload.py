"""Impossible days: what one staff member recorded in one day cannot all be true.

- ``overlapping_records``: two services of one staff member overlapping in time (by more than
  ``overlap_tolerance_minutes``), or a home visit they made during one of their own services;
- ``service_hours_over_day``: more service hours on one business day (Asia/Shanghai) than
  ``max_service_hours_per_day`` (default 24: more than a day has), each service counted for the
  part of it that falls on that day;
- ``home_visits_over_ceiling``: more home visits on one day than ``max_home_visits_per_day``.

A staff member is the actor id the records carry: the recording actor of a service, the
``visitor_id`` of a home visit (for staff with a StaffMember record, that id is the staff UUID).
Scope and key: "actor|day". A pair of overlapping records belongs to the day the later of the
two starts on, so each pair is reported once. Voided services drop out and clear the alert.
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

#: For each scope (actor, day): the actor's services starting on the day or the day before
#: (not voided) and their home visits (as visitor) on the day, kept only for scopes where one of
#: the three rules may fire (the candidate violations): at least two records with a service
#: among them, more service hours in the window than the ceiling, or more visits than theirs.
_RECORDS = """
WITH s AS (
    SELECT DISTINCT actor, day FROM unnest(%(actors)b::text[], %(days)b::date[]) AS s(actor, day)
), rec AS (
    -- LATERAL: one index lookup per scope, whatever the planner thinks of fresh tables
    SELECT s.actor AS scope_actor, s.day AS scope_day, r.*
    FROM s CROSS JOIN LATERAL (
        SELECT r.position, r.kind, r.starts, coalesce(r.ends, r.starts) AS ends, r.day,
               r.contractor_id, r.case_id
        FROM rf_record r
        WHERE r.kind = 'service' AND r.actor = s.actor AND r.void_position IS NULL
          AND r.day BETWEEN s.day - 1 AND s.day
        UNION ALL
        SELECT r.position, r.kind, r.starts, r.starts, r.day, r.contractor_id, r.case_id
        FROM rf_record r
        WHERE r.kind = 'investigation' AND r.visitor = s.actor AND r.day = s.day
    ) r
), counted AS (
    SELECT rec.*,
           count(*) FILTER (WHERE kind = 'service') OVER w AS services,
           count(*) OVER w AS records,
           sum(ends - starts) FILTER (WHERE kind = 'service') OVER w AS service_time,
           count(*) FILTER (WHERE kind = 'investigation') OVER w AS visits
    FROM rec WINDOW w AS (PARTITION BY scope_actor, scope_day)
)
SELECT k.scope_actor, k.scope_day, k.position, k.kind, k.starts, k.ends, k.day,
       k.contractor_id, c.county
FROM counted k JOIN rf_case c USING (case_id)
WHERE (k.services >= 1 AND k.records >= 2)
   OR k.service_time > make_interval(hours => %(hours)s)
   OR k.visits > %(visits)s
ORDER BY k.scope_actor, k.scope_day, k.starts, k.position
"""


def _scope(actor: str, day: dt.date) -> str:
    return f"{key_part(actor)}|{day.isoformat()}"


def _unscope(scope: str) -> tuple[str, dt.date]:
    actor, _, day = scope.rpartition("|")
    return unkey_part(actor), dt.date.fromisoformat(day)


class _StaffDay(ScopedRule):
    subject_kind = "staff"

    @triggered_by(ReliefCase.ServiceRecorded)
    def service(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        return [
            _scope(r.event.provenance.actor.id, business_date(moment))
            for r in events
            for moment in (r.event.start, r.event.end)
        ]

    @triggered_by(ReliefCase.Investigated)
    def visit(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        visits = [home_visit_of(r.event) for r in events]
        return [_scope(visit.visitor, business_date(visit.at)) for visit in visits]

    @triggered_by(ReliefCase.RecordCorrected)
    def voided(self, cursor: Cursor[Any], events: list[RecordedEvent]) -> list[str]:
        cursor.execute(
            "SELECT r.actor, r.starts, r.ends FROM rf_record r"
            " JOIN unnest(%b::uuid[], %b::integer[]) AS c(case_id, version)"
            " ON r.case_id = c.case_id AND r.version = c.version"
            " WHERE r.kind = 'service'",
            (
                [r.originator_id for r in events],
                [r.event.corrects_version for r in events],
            ),
        )
        return [
            _scope(actor, business_date(moment))
            for actor, starts, ends in cursor.fetchall()
            for moment in (starts, ends)
        ]

    def candidates(
        self, cursor: Cursor[Any], scopes: Sequence[str]
    ) -> dict[str, list[tuple[Any, ...]]]:
        """The records of each candidate scope, in (starts, position) order:
        (position, kind, starts, ends, day, contractor, county)."""
        parts = [_unscope(scope) for scope in scopes]
        cursor.execute(
            _RECORDS,
            {
                "actors": [actor for actor, _ in parts],
                "days": [day for _, day in parts],
                "hours": int(self.config.max_service_hours_per_day),
                "visits": self.config.max_home_visits_per_day,
            },
        )
        found: dict[str, list[tuple[Any, ...]]] = {}
        for row in cursor.fetchall():
            found.setdefault(_scope(row[0], row[1]), []).append(tuple(row[2:]))
        return found

    def judge_scope(
        self, cursor: Cursor[Any], scope: str, records: list[tuple[Any, ...]]
    ) -> list[Finding]:
        actor, day = _unscope(scope)
        return self.judge_day(scope, actor, day, records)

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
            actor,
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
