"""The division register (行政区划): Guangdong's administrative divisions as events.

A ``Division`` is established with its code, name, level and parent on a date, may be renamed,
merged into another division or abolished, each change effective from a business date
(``domain/clock.py``) and carrying its provenance. A division exists on a date ``d`` when
``valid_from <= d`` and it was not merged or abolished on or before ``d`` (``valid_to`` is the
first day it no longer exists). Commands naming a division are checked against the register at
their own effective date (``check_division_exists``).

``plan_register_changes`` compares the register with a published list (the statistics bureau's
统计用区划代码) and names the events the list implies, so importing the same list twice writes
nothing and a newer list writes only the differences.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from eventsourcing.domain import Aggregate, event

from domain.errors import DivisionChange, InvalidValue, UnknownDivision
from domain.identifiers import DivisionCode, DivisionLevel, parse_division_code
from domain.provenance import Provenance
from domain.values import check_printable

#: Namespace of division aggregate ids: a division's id is derived from its code, so the
#: register needs no index to find a division and a code is established once.
DIVISION_NAMESPACE = uuid.UUID("8f0e2c1a-44d1-5b7e-9a55-72656c696566")


def division_id(code: str) -> uuid.UUID:
    return uuid.uuid5(DIVISION_NAMESPACE, code)


def require_division_name(name: str, *, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidValue("a division name has 1 to 200 characters", field=field)
    check_printable(name, field=field)
    return name.strip()


def _parent_of(code: DivisionCode) -> str | None:
    """The enclosing division's code, by the code's own hierarchy."""
    lengths = [level.value for level in DivisionLevel]
    index = lengths.index(len(code.code))
    return code.code[: lengths[index - 1]] if index else None


@dataclass(frozen=True)
class DivisionEntry:
    """A division as the register knows it over one period of one name: ``valid_to`` is the
    first day it no longer holds (None: still in force)."""

    code: str
    name: str
    level: DivisionLevel
    parent: str | None
    valid_from: dt.date
    valid_to: dt.date | None = None

    def holds_on(self, on_date: dt.date) -> bool:
        return self.valid_from <= on_date and (self.valid_to is None or on_date < self.valid_to)


@dataclass(frozen=True)
class ListedDivision:
    """One line of a published division list: code, name (the level and parent follow from
    the code)."""

    code: str
    name: str

    @property
    def level(self) -> DivisionLevel:
        return DivisionLevel(len(self.code))

    @property
    def parent(self) -> str | None:
        return _parent_of(DivisionCode(self.code))


class DivisionRegister(Protocol):
    """The register as commands consult it: what a code names on a date."""

    def lookup(self, code: str, on_date: dt.date) -> DivisionEntry | None: ...


class DivisionCatalogue(DivisionRegister, Protocol):
    """The register as an import compares with it: every entry by code, its latest period."""

    def current(self) -> Mapping[str, DivisionEntry]: ...


def check_division_exists(
    register: DivisionRegister, code: str, on_date: dt.date, *, field: str | None = None
) -> DivisionEntry:
    """The entry of ``code`` on ``on_date``; ``UnknownDivision`` naming ``field`` when the code
    is malformed-free but names no division then (never established, not yet, merged or
    abolished)."""
    parse_division_code(code, field=field)
    entry = register.lookup(code, on_date)
    if entry is None:
        raise UnknownDivision(
            f"division {code} does not exist on {on_date.isoformat()} in the division register",
            field=field,
        )
    return entry


class MappingRegister:
    """A register held in memory: each code's periods (from the read model, or folded from
    events). Implements ``DivisionCatalogue``."""

    def __init__(self, entries: Iterable[DivisionEntry] = ()) -> None:
        self._periods: dict[str, list[DivisionEntry]] = {}
        for entry in entries:
            self._periods.setdefault(entry.code, []).append(entry)
        for periods in self._periods.values():
            periods.sort(key=lambda e: e.valid_from)

    def __len__(self) -> int:
        return len(self._periods)

    def lookup(self, code: str, on_date: dt.date) -> DivisionEntry | None:
        for entry in self._periods.get(code, ()):
            if entry.holds_on(on_date):
                return entry
        return None

    def current(self) -> Mapping[str, DivisionEntry]:
        return {code: periods[-1] for code, periods in self._periods.items()}

    def name(self, code: str) -> str | None:
        periods = self._periods.get(code)
        return periods[-1].name if periods else None


@dataclass
class _Period:
    name: str
    valid_from: dt.date
    valid_to: dt.date | None = None


class Division(Aggregate):
    """One administrative division (行政区划单位) over its life in the register."""

    @classmethod
    def establish(
        cls, *, code: str, name: str, effective_from: dt.date, provenance: Provenance
    ) -> Division:
        parsed = parse_division_code(code, field="code")
        return cls(
            code=parsed.code,
            name=require_division_name(name),
            level=parsed.level.value,
            parent=_parent_of(parsed),
            effective_from=effective_from,
            provenance=provenance,
        )

    @staticmethod
    def create_id(code: str, **_: object) -> uuid.UUID:
        return division_id(code)

    class Established(Aggregate.Created):
        code: str
        name: str
        level: int
        parent: str | None
        effective_from: dt.date
        provenance: Provenance

    @event(Established)
    def __init__(
        self,
        code: str,
        name: str,
        level: int,
        parent: str | None,
        effective_from: dt.date,
        provenance: Provenance,
    ) -> None:
        self.code = code
        self.level = DivisionLevel(level)
        self.parent = parent
        self.periods: list[_Period] = [_Period(name, effective_from)]
        self.merged_into: str | None = None

    @property
    def name(self) -> str:
        return self.periods[-1].name

    @property
    def valid_from(self) -> dt.date:
        return self.periods[0].valid_from

    @property
    def valid_to(self) -> dt.date | None:
        return self.periods[-1].valid_to

    def entries(self) -> list[DivisionEntry]:
        return [
            DivisionEntry(self.code, p.name, self.level, self.parent, p.valid_from, p.valid_to)
            for p in self.periods
        ]

    def _check_change(self, effective_from: dt.date) -> None:
        if self.valid_to is not None:
            raise DivisionChange(
                f"division {self.code} no longer exists from {self.valid_to.isoformat()}",
                field="code",
            )
        if effective_from <= self.periods[-1].valid_from:
            raise DivisionChange(
                f"a change to division {self.code} takes effect after "
                f"{self.periods[-1].valid_from.isoformat()}, when its current name began",
                field="effective_from",
            )

    def rename(self, *, name: str, effective_from: dt.date, provenance: Provenance) -> None:
        new_name = require_division_name(name)
        self._check_change(effective_from)
        if new_name == self.name:
            raise DivisionChange(f"division {self.code} is named {new_name} already", field="name")
        self.trigger_event(
            self.Renamed, name=new_name, effective_from=effective_from, provenance=provenance
        )

    class Renamed(Aggregate.Event):
        name: str
        effective_from: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Division)
            aggregate.periods[-1].valid_to = self.effective_from
            aggregate.periods.append(_Period(self.name, self.effective_from))

    def merge_into(
        self, *, successor: str, effective_from: dt.date, provenance: Provenance
    ) -> None:
        """Merged into ``successor`` (撤并): this code no longer exists from that date; its
        area belongs to the successor, a division of the same level."""
        target = parse_division_code(successor, field="successor")
        if target.code == self.code or target.level is not self.level:
            raise DivisionChange(
                f"division {self.code} merges into another {self.level.name.lower()}",
                field="successor",
            )
        self._check_change(effective_from)
        self.trigger_event(
            self.MergedInto,
            successor=target.code,
            effective_from=effective_from,
            provenance=provenance,
        )

    class MergedInto(Aggregate.Event):
        successor: str
        effective_from: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Division)
            aggregate.periods[-1].valid_to = self.effective_from
            aggregate.merged_into = self.successor

    def abolish(self, *, effective_from: dt.date, provenance: Provenance) -> None:
        self._check_change(effective_from)
        self.trigger_event(self.Abolished, effective_from=effective_from, provenance=provenance)

    class Abolished(Aggregate.Event):
        effective_from: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Division)
            aggregate.periods[-1].valid_to = self.effective_from


# Planning an import ------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterPlan:
    """What a published list changes in the register: divisions to establish (parents
    first), to rename, and to abolish (children first)."""

    establish: tuple[ListedDivision, ...] = ()
    rename: tuple[ListedDivision, ...] = ()
    abolish: tuple[str, ...] = ()
    #: Listed codes the register knows as ended (merged or abolished): not re-established.
    ended: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.establish or self.rename or self.abolish)


def plan_register_changes(
    current: Mapping[str, DivisionEntry], listed: Sequence[ListedDivision]
) -> RegisterPlan:
    """The events ``listed`` implies against ``current`` (each code's latest period).

    A listed code the register lacks is established; a listed code under another name is
    renamed; a code in force that the list omits is abolished, but only inside the provinces
    the list covers (a list of Guangdong says nothing about Guangxi)."""
    by_code: dict[str, ListedDivision] = {}
    for item in listed:
        parse_division_code(item.code, field="code")
        require_division_name(item.name)
        if item.code in by_code and by_code[item.code].name != item.name:
            raise InvalidValue(f"division {item.code} is listed twice", field="code")
        by_code[item.code] = item
    establish, rename, ended = [], [], []
    for code, item in by_code.items():
        entry = current.get(code)
        if entry is None:
            establish.append(item)
        elif entry.valid_to is not None:
            ended.append(code)
        elif entry.name != item.name.strip():
            rename.append(item)
    provinces = {code[:2] for code in by_code}
    abolish = [
        code
        for code, entry in current.items()
        if entry.valid_to is None and code not in by_code and code[:2] in provinces
    ]

    def depth(code: str) -> tuple[int, str]:
        return (len(code), code)

    return RegisterPlan(
        establish=tuple(sorted(establish, key=lambda item: depth(item.code))),
        rename=tuple(sorted(rename, key=lambda item: depth(item.code))),
        abolish=tuple(sorted(abolish, key=depth, reverse=True)),
        ended=tuple(sorted(ended)),
    )
