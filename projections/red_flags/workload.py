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
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.case import ReliefCase
from domain.clock import BUSINESS_TZ, business_date
from projections.base import RecordedEvent
from projections.red_flags.engine import (
    Finding,
    Rule,
    key_part,
    majority,
    triggered_by,
    unkey_part,
)

#: One staff member's services (by their recording actor) starting on days first..last, and
#: their home visits (as visitor) on days visits_from..last.
_RECORDS = """
SELECT r.position, r.kind, r.starts, coalesce(r.ends, r.starts), r.day, r.contractor_id,
       c.county
FROM rf_record r JOIN rf_case c USING (case_id)
WHERE (r.kind = 'service' AND r.actor = %(actor)s AND r.void_position IS NULL
       AND r.day BETWEEN %(first)s AND %(last)s)
   OR (r.kind = 'investigation' AND r.visitor = %(actor)s
       AND r.day BETWEEN %(visits_from)s AND %(last)s)
ORDER BY r.starts, r.position
"""


def _scope(actor: str, day: dt.date) -> str:
    return f"{key_part(actor)}|{day.isoformat()}"


def _unscope(scope: str) -> tuple[str, dt.date]:
    actor, _, day = scope.rpartition("|")
    return unkey_part(actor), dt.date.fromisoformat(day)


class _StaffDay(Rule):
    subject_kind = "staff"

    @triggered_by(ReliefCase.ServiceRecorded)
    def service(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        e = recorded.event
        actor = e.provenance.actor.id
        return [_scope(actor, business_date(e.start)), _scope(actor, business_date(e.end))]

    @triggered_by(ReliefCase.Investigated)
    def visit(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        visit = recorded.event.means_test.home_visit
        return [_scope(visit.visitor_id, business_date(visit.visited_at))]

    @triggered_by(ReliefCase.RecordCorrected)
    def voided(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        cursor.execute(
            "SELECT actor, starts, ends FROM rf_record WHERE case_id = %s AND version = %s"
            " AND kind = 'service'",
            (recorded.originator_id, recorded.event.corrects_version),
        )
        return [
            _scope(actor, business_date(moment))
            for actor, starts, ends in cursor.fetchall()
            for moment in (starts, ends)
        ]

    def records(
        self,
        cursor: Cursor[Any],
        actor: str,
        first: dt.date,
        last: dt.date,
        *,
        visits: bool,
    ) -> list[tuple[Any, ...]]:
        """Services starting on days first..last and, with ``visits``, home visits on
        ``last``."""
        cursor.execute(
            _RECORDS,
            {
                "actor": actor,
                "first": first,
                "last": last,
                # no visit lies in an empty range
                "visits_from": last if visits else last + dt.timedelta(days=1),
            },
        )
        return cursor.fetchall()

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

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        actor, day = _unscope(scope)
        # A partner of a record starting on ``day`` starts at most 24 h earlier.
        first = day - dt.timedelta(days=1)
        if not self.records(cursor, actor, first, day, visits=False):
            return []  # no service, no overlap (spares reading a busy visitor's visits)
        records = self.records(cursor, actor, first, day, visits=True)
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

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        actor, day = _unscope(scope)
        begin = dt.datetime.combine(day, dt.time.min, BUSINESS_TZ)
        end = begin + dt.timedelta(days=1)
        counted = []
        total = dt.timedelta(0)
        for record in self.records(cursor, actor, day - dt.timedelta(days=1), day, visits=False):
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

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        actor, day = _unscope(scope)
        cursor.execute(
            "SELECT count(*) FROM rf_record WHERE visitor = %s AND day = %s"
            " AND kind = 'investigation'",
            (actor, day),
        )
        count = cursor.fetchone()[0]  # type: ignore[index]
        ceiling = self.config.max_home_visits_per_day
        if count <= ceiling:
            return []
        cursor.execute(
            "SELECT r.position, r.kind, r.starts, r.starts, r.day, r.contractor_id, c.county"
            " FROM rf_record r JOIN rf_case c USING (case_id)"
            " WHERE r.visitor = %s AND r.day = %s AND r.kind = 'investigation'"
            " ORDER BY r.position LIMIT %s",
            (actor, day, self.config.max_evidence),
        )
        cited = cursor.fetchall()
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
