"""Staffing (经办服务人员配备): the history the staffing view is computed from.

Every row is an interval or a dated fact derived from one aggregate's own events (a case's
activity, a staff member's assignments, a contract's terms), so the tables are the same whatever
order different aggregates' events arrive in (PostgreSQL log or Kafka partitions), and the
position at any past moment is a query, not a stored copy. The band tables are applied when the
view is read (projections/staffing_view.py), so a new table needs no replay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from uuid import UUID

from psycopg import Cursor

from domain.case import ReliefCase
from domain.clock import BUSINESS_TZ
from domain.contract import Contract
from domain.division import Division
from domain.staff import StaffMember
from projections.base import FoldingProjection, RecordedEvent, handles
from projections.payloads import terms_of
from projections.sets import Column, arrays, insert, select_where_in, unnest, upsert


class StaffingProjection(FoldingProjection):
    name = "staffing"
    tables = (
        """CREATE TABLE case_home (
            case_id uuid PRIMARY KEY, household_id uuid NOT NULL, village text NOT NULL
        )""",
        """CREATE TABLE case_activity (
            case_id uuid NOT NULL,
            household_id uuid NOT NULL,
            village text NOT NULL,
            active_from timestamptz NOT NULL,
            active_to timestamptz,
            PRIMARY KEY (case_id, active_from)
        )""",
        "CREATE INDEX case_activity_village ON case_activity (village text_pattern_ops)",
        """CREATE TABLE staff_member (
            staff_id uuid PRIMARY KEY, kind text NOT NULL, employer text NOT NULL,
            contract_id uuid
        )""",
        """CREATE TABLE staff_assignment (
            staff_id uuid NOT NULL,
            division text NOT NULL,
            assigned_from timestamptz NOT NULL,
            assigned_to timestamptz,
            PRIMARY KEY (staff_id, assigned_from)
        )""",
        """CREATE TABLE contract_terms (
            contract_id uuid NOT NULL,
            recorded_at timestamptz NOT NULL,
            effective_from date NOT NULL,
            term_start date NOT NULL,
            term_end date NOT NULL,
            PRIMARY KEY (contract_id, recorded_at)
        )""",
        """CREATE TABLE contract_termination (
            contract_id uuid PRIMARY KEY, recorded_at timestamptz NOT NULL,
            effective_at timestamptz NOT NULL
        )""",
        # The current position, kept by each batch so a dashboard reads a row per division
        # instead of every active household: how many active cases each household has in
        # each village, township and county it is counted in ...
        """CREATE TABLE active_household (
            division text COLLATE "C" NOT NULL,
            household_id uuid NOT NULL,
            cases integer NOT NULL CHECK (cases > 0),
            PRIMARY KEY (division, household_id)
        )""",
        # ... and every county and township the ledger has seen (a case became active in it
        # or below it, a staff member was assigned to it or below it) with its relief
        # households now and its staff: open assignments to it of staff who are not village
        # coordinators, paid by the government or under a contract (whether or not the
        # contract is in force: a term runs out and a removal dated ahead takes effect with no
        # event, so the few staff these make count differently are corrected when read).
        """CREATE TABLE staffing_divisions (
            division text COLLATE "C" PRIMARY KEY,
            level text NOT NULL,
            households integer NOT NULL CHECK (households >= 0),
            government integer NOT NULL CHECK (government >= 0),
            contractor integer NOT NULL CHECK (contractor >= 0)
        )""",
        "CREATE INDEX staffing_divisions_level ON staffing_divisions (level, division)",
        # the staff of counties and townships now, read apart from the villages' coordinators
        "CREATE INDEX staff_assignment_divisions ON staff_assignment (division text_pattern_ops)"
        " WHERE length(division) IN (6, 9)",
        "CREATE INDEX staff_member_divisions ON staff_member (staff_id)"
        " INCLUDE (employer, contract_id) WHERE kind <> 'village_coordinator'",
        # ... and every village of the division register and every village the ledger has
        # seen, with its relief households now and its village coordinators: open assignments
        # of coordinators, whoever pays them (the few a contract out of force or a removal
        # dated ahead makes count differently at a moment are corrected when read), so the
        # villages of a status are a range of the coordinators index in code order and a
        # policy change needs no replay.
        # ``listed_from``/``listed_to``: the register's period of the village (its latest
        # establishment to its merger or abolition); ``seen``: a case became active in it or a
        # coordinator was assigned to it, so it is listed whatever the register says.
        """CREATE TABLE staffing_villages (
            village text COLLATE "C" PRIMARY KEY,
            households integer NOT NULL CHECK (households >= 0),
            coordinators integer NOT NULL CHECK (coordinators >= 0),
            seen boolean NOT NULL,
            division_id uuid,
            listed_from date,
            listed_to date
        )""",
        "CREATE INDEX staffing_villages_coordinators ON staffing_villages (coordinators, village)",
        "CREATE INDEX staffing_villages_division ON staffing_villages (division_id)",
        # the few register villages not listed on a day: not established yet, or ended
        "CREATE INDEX staffing_villages_from ON staffing_villages (listed_from) WHERE NOT seen",
        "CREATE INDEX staffing_villages_to ON staffing_villages (listed_to)"
        " WHERE NOT seen AND listed_to IS NOT NULL",
        # How many villages of each county have each number of coordinators: a province's or
        # prefecture's villages per status are a sum of a few rows (no row at 0 villages).
        """CREATE TABLE staffing_village_counts (
            county text COLLATE "C" NOT NULL,
            coordinators integer NOT NULL,
            villages integer NOT NULL CHECK (villages > 0),
            PRIMARY KEY (county, coordinators)
        )""",
        # the read-time corrections: coordinators of contracts, assignments ending ahead
        "CREATE INDEX staff_member_contract ON staff_member (contract_id)"
        " WHERE contract_id IS NOT NULL",
        "CREATE INDEX staff_assignment_to ON staff_assignment (assigned_to)",
        "CREATE INDEX staff_assignment_division ON staff_assignment (division text_pattern_ops)",
        "CREATE INDEX case_activity_from ON case_activity (active_from)",
    )
    views = (
        "staffing_divisions",
        "staffing_villages",
        "staffing_village_counts",
        "case_activity",
        "staff_member",
        "staff_assignment",
        "contract_terms",
        "contract_termination",
    )
    # Staff members, contract terms and terminations name no division: their writes move
    # every answer's tag.
    scoped: ClassVar[Mapping[str, Sequence[str]]] = {
        "case_home": ("village",),
        "case_activity": ("village",),
        "staff_assignment": ("division",),
        "active_household": ("division",),
        "staffing_divisions": ("division",),
        "staffing_villages": ("village",),
        "staffing_village_counts": ("county",),
    }

    def load_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> StaffingBatch:
        return StaffingBatch.load(cursor, events)

    # Cases ---------------------------------------------------------------------------------

    @handles(ReliefCase.ApplicationReceived)
    def received(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.homes[recorded.originator_id] = (e.household_id, e.registered_division)
        batch.new_homes.append((recorded.originator_id, e.household_id, e.registered_division))

    @handles(ReliefCase.Approved, ReliefCase.Resumed)
    def became_active(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        home = batch.homes.get(recorded.originator_id)
        if home is None:
            raise LookupError(f"case {recorded.originator_id} was never received")
        batch.activity.open(recorded.originator_id, recorded.timestamp, home)
        batch.current.active(home[0], home[1], +1)

    @handles(ReliefCase.Suspended, ReliefCase.Closed)
    def became_inactive(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        for row in batch.activity.close(recorded.originator_id, lambda _start: recorded.timestamp):
            batch.current.active(row[2], row[3], -1)

    # Staff ---------------------------------------------------------------------------------

    @handles(StaffMember.Hired)
    def hired(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        employer = "contractor" if e.contract_id else "government"
        batch.staff.append((recorded.originator_id, e.kind, employer, e.contract_id))
        batch.kinds[recorded.originator_id] = e.kind
        batch.employers[recorded.originator_id] = employer

    @staticmethod
    def _end_assignment(batch: StaffingBatch, staff_id: UUID, at: dt.datetime) -> None:
        """Close the open assignment: a coordinator leaves its village's count now, even when
        the end is dated ahead (the view adds those back until then)."""
        coordinator = batch.kinds.get(staff_id) == COORDINATOR
        for row in batch.assignments.close(staff_id, lambda start: max(at, start)):
            if coordinator:
                batch.current.coordinator(row[2], -1)
            else:
                batch.current.staff(row[2], batch.employers[staff_id], -1)

    @handles(StaffMember.Assigned)
    def assigned(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        self._end_assignment(batch, recorded.originator_id, recorded.timestamp)
        batch.assignments.open(
            recorded.originator_id, recorded.timestamp, (recorded.event.division,)
        )
        batch.current.seen(recorded.event.division)
        if batch.kinds.get(recorded.originator_id) == COORDINATOR:
            batch.current.coordinator(recorded.event.division, +1)
        else:
            employer = batch.employers[recorded.originator_id]
            batch.current.staff(recorded.event.division, employer, +1)

    @handles(StaffMember.Removed)
    def removed(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        # Removed as of its date, but never before it was recorded: the view as it stood.
        on = dt.datetime.combine(recorded.event.on, dt.time.min, BUSINESS_TZ)
        self._end_assignment(batch, recorded.originator_id, max(on, recorded.timestamp))

    # Contracts -----------------------------------------------------------------------------

    @handles(Contract.Awarded)
    def awarded(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        batch.terms.append(
            (recorded.originator_id, recorded.timestamp, dt.date.min, e.terms.start, e.terms.end)
        )

    @handles(Contract.Amended, Contract.Renewed)
    def terms_changed(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        terms = terms_of(recorded.event)
        batch.terms.append(
            (
                recorded.originator_id,
                recorded.timestamp,
                recorded.event.effective_from,
                terms.start,
                terms.end,
            )
        )

    @handles(Contract.Terminated)
    def terminated(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        batch.terminations.append(
            (recorded.originator_id, recorded.timestamp, recorded.event.effective_at)
        )

    # The division register: its villages, each listed while in force -----------------------

    @handles(Division.Established)
    def established(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        e = recorded.event
        if e.level == VILLAGE_WIDTH:
            batch.current.register.append((e.code, recorded.originator_id, e.effective_from))

    @handles(Division.MergedInto, Division.Abolished)
    def ended(self, batch: StaffingBatch, recorded: RecordedEvent) -> None:
        batch.current.register.append((None, recorded.originator_id, recorded.event.effective_from))


class Intervals:
    """The intervals of one table (case activity, staff assignments) a batch touches: the open
    ones read once, opened and closed in memory, the changed ones written once."""

    def __init__(self, table: str, owner: str, start: str, end: str, columns: list[Column]):
        self.table, self.owner, self.start, self.end = table, owner, start, end
        self.columns = columns  # the other columns, written with a new interval
        self.rows: dict[tuple[UUID, dt.datetime], list[Any]] = {}  # (owner, start) -> row
        self.opened: dict[UUID, list[dt.datetime]] = {}  # owner -> starts of open intervals
        self.changed: set[tuple[UUID, dt.datetime]] = set()

    def load(self, cursor: Cursor[Any], owners: set[UUID]) -> None:
        names = ", ".join(name for name, _ in self.columns)
        for row in select_where_in(
            cursor,
            f"SELECT {self.owner}, {self.start}, {names} FROM {self.table}"
            f" WHERE {self.owner} = ANY(%s) AND {self.end} IS NULL ORDER BY 1, 2",
            owners,
        ):
            self.rows[(row[0], row[1])] = [*row, None]
            self.opened.setdefault(row[0], []).append(row[1])

    def open(self, owner: UUID, start: dt.datetime, values: tuple[Any, ...]) -> None:
        self.rows[(owner, start)] = [owner, start, *values, None]
        self.opened.setdefault(owner, []).append(start)
        self.changed.add((owner, start))

    def close(self, owner: UUID, end_of: Callable[[dt.datetime], dt.datetime]) -> list[list[Any]]:
        """End every open interval of ``owner`` at ``end_of(its start)``; their rows."""
        closed = []
        for start in self.opened.pop(owner, []):
            self.rows[(owner, start)][-1] = end_of(start)
            self.changed.add((owner, start))
            closed.append(self.rows[(owner, start)])
        return closed

    def write(self, cursor: Cursor[Any]) -> None:
        rows = [self.rows[key] for key in sorted(self.changed)]
        columns = [
            (self.owner, "uuid"),
            (self.start, "timestamptz"),
            *self.columns,
            (self.end, "timestamptz"),
        ]
        upsert(cursor, self.table, columns, rows, key=(self.owner, self.start))


class StaffingBatch:
    """What one batch changes in the staffing tables."""

    def __init__(self) -> None:
        self.homes: dict[UUID, tuple[UUID, str]] = {}  # case -> (household, village)
        self.new_homes: list[tuple[Any, ...]] = []
        self.activity = Intervals(
            "case_activity",
            "case_id",
            "active_from",
            "active_to",
            [("household_id", "uuid"), ("village", "text")],
        )
        self.assignments = Intervals(
            "staff_assignment", "staff_id", "assigned_from", "assigned_to", [("division", "text")]
        )
        self.staff: list[tuple[Any, ...]] = []
        self.terms: list[tuple[Any, ...]] = []
        self.terminations: list[tuple[Any, ...]] = []
        self.kinds: dict[UUID, str] = {}  # staff member -> kind, of those the batch moves
        self.employers: dict[UUID, str] = {}  # staff member -> government or contractor
        self.current = CurrentStaffing()

    @classmethod
    def load(cls, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> StaffingBatch:
        batch = cls()
        cases = {r.originator_id for r in events if type(r.event) in CASE_STATE_EVENTS}
        for case_id, household_id, village in select_where_in(
            cursor,
            "SELECT case_id, household_id, village FROM case_home WHERE case_id = ANY(%s)",
            cases,
        ):
            batch.homes[case_id] = (household_id, village)
        batch.activity.load(cursor, cases)
        staff = {r.originator_id for r in events if type(r.event) in STAFF_STATE_EVENTS}
        batch.assignments.load(cursor, staff)
        for staff_id, kind, employer in select_where_in(
            cursor,
            "SELECT staff_id, kind, employer FROM staff_member WHERE staff_id = ANY(%s)",
            staff,
        ):
            batch.kinds[staff_id] = kind
            batch.employers[staff_id] = employer
        return batch

    def write(self, cursor: Cursor[Any]) -> None:
        insert(
            cursor,
            "case_home",
            (("case_id", "uuid"), ("household_id", "uuid"), ("village", "text")),
            self.new_homes,
        )
        self.activity.write(cursor)
        insert(
            cursor,
            "staff_member",
            (("staff_id", "uuid"), ("kind", "text"), ("employer", "text"), ("contract_id", "uuid")),
            self.staff,
        )
        self.assignments.write(cursor)
        insert(
            cursor,
            "contract_terms",
            (
                ("contract_id", "uuid"),
                ("recorded_at", "timestamptz"),
                ("effective_from", "date"),
                ("term_start", "date"),
                ("term_end", "date"),
            ),
            self.terms,
        )
        insert(
            cursor,
            "contract_termination",
            (
                ("contract_id", "uuid"),
                ("recorded_at", "timestamptz"),
                ("effective_at", "timestamptz"),
            ),
            self.terminations,
        )
        self.current.write(cursor)


#: Where a relief household counts: its village, its township, its county.
LEVEL_OF_WIDTH = {6: "county", 9: "township", 12: "village"}
VILLAGE_WIDTH = 12
STAFFED_WIDTHS = (6, 9)  # counties and townships, whose staff are counted
COORDINATOR = "village_coordinator"


def divisions_of(code: str) -> list[str]:
    """The county, township and village codes a division code is, or lies in."""
    return [code[:width] for width in LEVEL_OF_WIDTH if len(code) >= width]


def household_changes(
    moves: dict[tuple[str, UUID], int], before: dict[tuple[str, UUID], int]
) -> tuple[dict[tuple[str, UUID], int], dict[str, int]]:
    """Active cases per (division, household) after a batch's ``moves``, from ``before``; and
    how each division's relief households changed: +1 when a household's first active case
    there began, -1 when its last one ended."""
    after: dict[tuple[str, UUID], int] = {}
    households: dict[str, int] = {}
    for key, delta in moves.items():
        old = before.get(key, 0)
        new = old + delta
        if new < 0:
            raise LookupError(f"household {key[1]} had no active case in {key[0]}")
        after[key] = new
        households[key[0]] = households.get(key[0], 0) + (new > 0) - (old > 0)
    return after, households


class CurrentStaffing:
    """What one batch changes in the current position: active cases moved in memory, the
    households rows read once and written once, the divisions' rows read once and written
    once."""

    def __init__(self) -> None:
        self.moves: dict[tuple[str, UUID], int] = {}  # (division, household) -> active cases
        self.touched: set[str] = set()  # divisions seen by this batch
        self.coordinators: dict[str, int] = {}  # village -> coordinators come and gone
        # county or township -> [government, contractor] staff come and gone
        self.staffed: dict[str, list[int]] = {}
        # the register's villages in the order of the events: (code, division id, from) of an
        # establishment, (None, division id, from) of a merger or abolition
        self.register: list[tuple[str | None, UUID, dt.date]] = []

    def active(self, household_id: UUID, village: str, delta: int) -> None:
        for code in divisions_of(village):
            key = (code, household_id)
            self.moves[key] = self.moves.get(key, 0) + delta
            self.touched.add(code)

    def seen(self, division: str) -> None:
        self.touched.update(divisions_of(division))

    def coordinator(self, division: str, delta: int) -> None:
        if len(division) == VILLAGE_WIDTH:
            self.coordinators[division] = self.coordinators.get(division, 0) + delta

    def staff(self, division: str, employer: str, delta: int) -> None:
        """A staff member who is not a coordinator came to or left a county or township."""
        if len(division) in STAFFED_WIDTHS:
            moved = self.staffed.setdefault(division, [0, 0])
            moved[employer == "contractor"] += delta

    def write(self, cursor: Cursor[Any]) -> None:
        households: dict[str, int] = {}
        if self.moves:
            households = self.write_households(cursor)
        self.write_villages(cursor, households)
        codes = sorted(
            {code for code in self.touched if len(code) < VILLAGE_WIDTH} | set(self.staffed)
        )
        if not codes:
            return
        before = {
            row[0]: row[1:]
            for row in select_where_in(
                cursor,
                "SELECT division, households, government, contractor FROM staffing_divisions"
                " WHERE division = ANY(%s)",
                codes,
                kind="text",
            )
        }
        rows = []
        for code in codes:
            had = before.get(code, (0, 0, 0))
            moved = self.staffed.get(code, [0, 0])
            row = (
                code,
                LEVEL_OF_WIDTH[len(code)],
                had[0] + households.get(code, 0),
                had[1] + moved[0],
                had[2] + moved[1],
            )
            if row[3] < 0 or row[4] < 0:
                raise LookupError(f"division {code} had no staff to lose")
            rows.append(row)
        upsert(
            cursor,
            "staffing_divisions",
            (
                ("division", "text"),
                ("level", "text"),
                ("households", "integer"),
                ("government", "integer"),
                ("contractor", "integer"),
            ),
            rows,
            key=("division",),
        )

    def write_households(self, cursor: Cursor[Any]) -> dict[str, int]:
        """Each household's active cases per division moved; how each division's relief
        households changed."""
        member: tuple[Column, ...] = (("division", "text"), ("household_id", "uuid"))
        keys = sorted(self.moves)
        cursor.execute(
            f"SELECT a.division, a.household_id, a.cases FROM {unnest(member, 'k')}"
            " JOIN active_household a ON (a.division, a.household_id)"
            ' = (k.division COLLATE "C", k.household_id)',
            arrays(keys, 2),
        )
        before = {(row[0], row[1]): row[2] for row in cursor.fetchall()}
        after, households = household_changes(self.moves, before)
        kept = [(*key, after[key]) for key in keys if after[key]]
        gone = [key for key in keys if not after[key] and key in before]
        upsert(
            cursor,
            "active_household",
            (*member, ("cases", "integer")),
            kept,
            key=("division", "household_id"),
        )
        if gone:
            cursor.execute(
                f"DELETE FROM active_household a USING {unnest(member, 'k')}"
                ' WHERE (a.division, a.household_id) = (k.division COLLATE "C", k.household_id)',
                arrays(gone, 2),
            )
        return households

    def write_villages(self, cursor: Cursor[Any], households: dict[str, int]) -> None:
        """The villages' rows the batch changes (``households``: how their relief households
        changed), read once and written once, and the counts per county and number of
        coordinators they move."""
        seen = {code for code in self.touched if len(code) == VILLAGE_WIDTH}
        ended = {division_id for code, division_id, _ in self.register if code is None}
        codes = seen | set(self.coordinators)
        codes.update(code for code, _, _ in self.register if code is not None)
        if not codes and not ended:
            return
        cursor.execute(
            "SELECT village, households, coordinators, seen, division_id, listed_from,"
            " listed_to FROM staffing_villages WHERE village = ANY(%(codes)s::text[])"
            " OR division_id = ANY(%(ended)s::uuid[])",
            {"codes": sorted(codes), "ended": sorted(ended)},
        )
        before = {row[0]: row for row in cursor.fetchall()}
        after: dict[str, list[Any]] = {code: list(row) for code, row in before.items()}
        for code in sorted(codes - set(before)):
            after[code] = [code, 0, 0, False, None, None, None]
        for code in seen:
            after[code][1] += households.get(code, 0)
            after[code][3] = True
        for code, delta in self.coordinators.items():
            after[code][2] += delta
            if after[code][2] < 0:
                raise LookupError(f"village {code} had no coordinator to lose")
        village_of = {row[4]: code for code, row in after.items() if row[4] is not None}
        for established, division_id, effective_from in self.register:
            if established is not None:
                after[established][4:7] = [division_id, effective_from, None]
                village_of[division_id] = established
            elif division_id in village_of:  # a village's merger or abolition
                after[village_of[division_id]][6] = effective_from
        changed = [row for code, row in sorted(after.items()) if tuple(row) != before.get(code)]
        upsert(
            cursor,
            "staffing_villages",
            (
                ("village", "text"),
                ("households", "integer"),
                ("coordinators", "integer"),
                ("seen", "boolean"),
                ("division_id", "uuid"),
                ("listed_from", "date"),
                ("listed_to", "date"),
            ),
            changed,
            key=("village",),
        )
        counts: dict[tuple[str, int], int] = {}
        for row in changed:
            old = before.get(row[0])
            if old is not None and old[2] == row[2]:
                continue
            if old is not None:
                key = (row[0][:6], old[2])
                counts[key] = counts.get(key, 0) - 1
            key = (row[0][:6], row[2])
            counts[key] = counts.get(key, 0) + 1
        moved = sorted(key for key, delta in counts.items() if delta)
        if not moved:
            return
        member: tuple[Column, ...] = (("county", "text"), ("coordinators", "integer"))
        cursor.execute(
            f"SELECT c.county, c.coordinators, c.villages FROM {unnest(member, 'k')}"
            " JOIN staffing_village_counts c"
            ' ON (c.county, c.coordinators) = (k.county COLLATE "C", k.coordinators)',
            arrays(moved, 2),
        )
        had = {(row[0], row[1]): row[2] for row in cursor.fetchall()}
        now = {key: had.get(key, 0) + counts[key] for key in moved}
        if any(villages < 0 for villages in now.values()):
            raise LookupError(f"village counts below zero: {now}")
        upsert(
            cursor,
            "staffing_village_counts",
            (*member, ("villages", "integer")),
            [(*key, villages) for key, villages in now.items() if villages],
            key=("county", "coordinators"),
        )
        gone = [key for key, villages in now.items() if not villages and key in had]
        if gone:
            cursor.execute(
                f"DELETE FROM staffing_village_counts c USING {unnest(member, 'k')}"
                ' WHERE (c.county, c.coordinators) = (k.county COLLATE "C", k.coordinators)',
                arrays(gone, 2),
            )


#: Events that read or change a case's open activity, a staff member's open assignment.
CASE_STATE_EVENTS = frozenset(
    {ReliefCase.Approved, ReliefCase.Resumed, ReliefCase.Suspended, ReliefCase.Closed}
)
STAFF_STATE_EVENTS = frozenset({StaffMember.Assigned, StaffMember.Removed})
