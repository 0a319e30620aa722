"""A household (家庭) in difficulty: where it is registered and lives, and who belongs to it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from eventsourcing.domain import Aggregate, event

from domain import upcasting
from domain.errors import HouseholdComposition, InvalidValue, MembershipForbids
from domain.identifiers import (
    DivisionCode,
    DivisionLevel,
    mask_resident_id,
    parse_division_code,
    parse_resident_id,
)
from domain.provenance import Provenance
from domain.upcasting import StoredState
from domain.values import parse_enum, require_person_name

JsonDict = dict[str, object]


class Relation(Enum):
    HEAD = "head"
    SPOUSE = "spouse"
    CHILD = "child"
    PARENT = "parent"
    GRANDCHILD = "grandchild"
    GRANDPARENT = "grandparent"
    SIBLING = "sibling"
    OTHER = "other"


class MemberStatus(Enum):
    PRESENT = "present"
    MOVED_OUT = "moved_out"
    DECEASED = "deceased"


@dataclass(frozen=True)
class HouseholdMember:
    """A member as the household register gives them: ID number, name, relation to the head."""

    resident_id: str
    name: str
    relation: str


@dataclass
class Member:
    resident_id: str
    name: str
    relation: Relation
    status: MemberStatus = MemberStatus.PRESENT

    def as_dict(self, *, masked: bool = True) -> JsonDict:
        return {
            "resident_id": mask_resident_id(self.resident_id) if masked else self.resident_id,
            "name": self.name,
            "relation": self.relation.value,
            "status": self.status.value,
        }


def _member(data: HouseholdMember, today: dt.date, index: int) -> HouseholdMember:
    """Validated and normalised, as stored."""
    number = parse_resident_id(
        data.resident_id, field=f"members[{index}].resident_id", today=today
    ).number
    name = require_person_name(data.name, field=f"members[{index}].name")
    relation = parse_enum(Relation, data.relation, f"members[{index}].relation")
    return HouseholdMember(number, name, relation.value)


class Household(Aggregate):
    @classmethod
    def register(
        cls,
        *,
        registered_division: str,
        residence_division: str,
        members: Sequence[HouseholdMember],
        today: dt.date,
        provenance: Provenance,
    ) -> Household:
        """Register a household; exactly one member is the head."""
        registered = parse_division_code(
            registered_division, level=DivisionLevel.VILLAGE, field="registered_division"
        )
        residence = parse_division_code(
            residence_division, level=DivisionLevel.VILLAGE, field="residence_division"
        )
        if not members:
            raise HouseholdComposition("a household has at least one member", field="members")
        parsed = tuple(_member(m, today, i) for i, m in enumerate(members))
        numbers = [m.resident_id for m in parsed]
        if len(set(numbers)) != len(numbers):
            raise HouseholdComposition("a person is listed twice", field="members")
        if sum(1 for m in parsed if m.relation == Relation.HEAD.value) != 1:
            raise HouseholdComposition("exactly one member must be the head", field="members")
        return cls(
            registered_division=registered.code,
            residence_division=residence.code,
            members=parsed,
            provenance=provenance,
        )

    class Registered(Aggregate.Created):
        registered_division: str
        residence_division: str
        members: Sequence[HouseholdMember]
        provenance: Provenance

        #: 2: members are typed values (were dicts).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: StoredState) -> None:
            state["members"] = tuple(
                HouseholdMember(
                    upcasting.text(m["resident_id"]),
                    upcasting.text(m["name"]),
                    upcasting.text(m["relation"]),
                )
                for m in upcasting.records(state["members"])
            )

    @event(Registered)
    def __init__(
        self,
        registered_division: str,
        residence_division: str,
        members: Sequence[HouseholdMember],
        provenance: Provenance,
    ) -> None:
        self.registered_division = DivisionCode(registered_division)
        self.residence_division = DivisionCode(residence_division)
        self.members: dict[str, Member] = {
            m.resident_id: Member(m.resident_id, m.name, Relation(m.relation)) for m in members
        }

    @property
    def county(self) -> DivisionCode:
        """The county with jurisdiction: that of the registered (hukou) village."""
        return self.registered_division.county

    def present_member(self, resident_id: str, *, field: str = "resident_id") -> Member:
        member = self.members.get(resident_id.upper())
        if member is None:
            raise InvalidValue(
                f"{mask_resident_id(resident_id)} is not a member of household {self.id}",
                field=field,
            )
        if member.status is not MemberStatus.PRESENT:
            raise MembershipForbids(
                f"{mask_resident_id(resident_id)} has {member.status.value.replace('_', ' ')}",
                field=field,
            )
        return member

    @property
    def size(self) -> int:
        return sum(1 for m in self.members.values() if m.status is MemberStatus.PRESENT)

    # Member changes ------------------------------------------------------------------------

    def add_member(
        self, *, member: HouseholdMember, by_birth: bool, today: dt.date, provenance: Provenance
    ) -> None:
        data = _member(member, today, 0)
        if data.relation == Relation.HEAD.value:
            raise HouseholdComposition("the household has a head already", field="relation")
        present = self.members.get(data.resident_id)
        if present is not None and present.status is MemberStatus.PRESENT:
            raise MembershipForbids("this person is a member already", field="resident_id")
        self.trigger_event(
            self.MemberAdded,
            resident_id=data.resident_id,
            name=data.name,
            relation=data.relation,
            by_birth=by_birth,
            provenance=provenance,
        )

    class MemberAdded(Aggregate.Event):
        resident_id: str
        name: str
        relation: str
        by_birth: bool
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Household)
            aggregate.members[self.resident_id] = Member(
                self.resident_id, self.name, Relation(self.relation)
            )

    def move_out(self, *, resident_id: str, on: dt.date, provenance: Provenance) -> None:
        member = self.present_member(resident_id)
        if member.relation is Relation.HEAD and self.size > 1:
            raise MembershipForbids(
                "name a new head before the head moves out", field="resident_id"
            )
        self.trigger_event(
            self.MemberMovedOut, resident_id=member.resident_id, on=on, provenance=provenance
        )

    class MemberMovedOut(Aggregate.Event):
        resident_id: str
        on: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Household)
            aggregate.members[self.resident_id].status = MemberStatus.MOVED_OUT

    def note_death(self, *, resident_id: str, on: dt.date, provenance: Provenance) -> None:
        member = self.members.get(resident_id)
        if member is None or member.status is MemberStatus.DECEASED:
            return
        self.trigger_event(self.MemberDied, resident_id=resident_id, on=on, provenance=provenance)

    class MemberDied(Aggregate.Event):
        resident_id: str
        on: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Household)
            aggregate.members[self.resident_id].status = MemberStatus.DECEASED

    def summary(self, *, masked: bool = True) -> JsonDict:
        return {
            "household_id": str(self.id),
            "registered_division": self.registered_division.code,
            "residence_division": self.residence_division.code,
            "county": self.county.code,
            "size": self.size,
            "members": [m.as_dict(masked=masked) for m in self.members.values()],
            "version": self.version,
        }
