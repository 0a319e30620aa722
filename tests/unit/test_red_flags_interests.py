"""Declared interests of staff (the data the conflict-of-interest red flag needs)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from domain.errors import InvalidIdentifier, InvalidState, InvalidValue, NotPermitted
from domain.person import person_id_for
from domain.provenance import Actor, Provenance, Role
from domain.staff import DeclaredRelative, StaffMember
from tests.factories import BY_OFFICER, IDENTITY_KEY, credit_code, resident_id


def staff() -> StaffMember:
    return StaffMember.hire(
        name="Wang Fang", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER
    )


def test_a_declaration_records_blind_indexes_never_the_numbers() -> None:
    member = staff()
    own, sister, uncle = resident_id(), resident_id(), resident_id()
    member.declare_interests(
        resident_id=own,
        relatives=[(sister, "sibling"), (uncle.lower(), "other")],
        key=IDENTITY_KEY,
        provenance=BY_OFFICER,
    )
    event = member.collect_events()[-1]
    assert isinstance(event, StaffMember.InterestsDeclared)
    assert event.person_id == person_id_for(own, IDENTITY_KEY)
    assert event.relatives == (
        DeclaredRelative(person_id_for(sister, IDENTITY_KEY), "sibling"),
        DeclaredRelative(person_id_for(uncle, IDENTITY_KEY), "other"),
    )
    text = repr(event.__dict__)
    assert all(number not in text for number in (own, sister, uncle))
    assert member.person_id == person_id_for(own, IDENTITY_KEY)
    assert member.relatives[person_id_for(sister, IDENTITY_KEY)].value == "sibling"


def test_a_new_declaration_replaces_the_old() -> None:
    member = staff()
    own, first, second = resident_id(), resident_id(), resident_id()
    member.declare_interests(
        resident_id=own, relatives=[(first, "spouse")], key=IDENTITY_KEY, provenance=BY_OFFICER
    )
    member.declare_interests(
        resident_id=own, relatives=[(second, "child")], key=IDENTITY_KEY, provenance=BY_OFFICER
    )
    assert set(member.relatives) == {person_id_for(second, IDENTITY_KEY)}


def test_staff_declare_for_themselves_even_as_contractor_staff() -> None:
    member = staff()
    themself = Provenance(
        actor=Actor(id=str(member.id), role=Role.CONTRACTOR_STAFF, organisation=credit_code())
    )
    member.declare_interests(
        resident_id=resident_id(), relatives=[], key=IDENTITY_KEY, provenance=themself
    )
    someone_else = Provenance(
        actor=Actor(id="worker-2", role=Role.CONTRACTOR_STAFF, organisation=credit_code())
    )
    with pytest.raises(NotPermitted):
        member.declare_interests(
            resident_id=resident_id(), relatives=[], key=IDENTITY_KEY, provenance=someone_else
        )


def test_malformed_declarations_are_refused() -> None:
    member = staff()
    own = resident_id()
    with pytest.raises(InvalidIdentifier):
        member.declare_interests(
            resident_id=own[:-1] + ("0" if own[-1] != "0" else "1"),
            relatives=[],
            key=IDENTITY_KEY,
            provenance=BY_OFFICER,
        )
    with pytest.raises(InvalidValue, match="twice"):
        member.declare_interests(
            resident_id=own, relatives=[(own, "sibling")], key=IDENTITY_KEY, provenance=BY_OFFICER
        )
    relative = resident_id()
    with pytest.raises(InvalidValue, match="twice"):
        member.declare_interests(
            resident_id=own,
            relatives=[(relative, "sibling"), (relative, "spouse")],
            key=IDENTITY_KEY,
            provenance=BY_OFFICER,
        )
    with pytest.raises(InvalidValue, match="kinship"):
        member.declare_interests(
            resident_id=own,
            relatives=[(relative, "friend")],
            key=IDENTITY_KEY,
            provenance=BY_OFFICER,
        )
    member.remove(on=dt.date(2026, 1, 1), reason="left", provenance=BY_OFFICER)
    with pytest.raises(InvalidState):
        member.declare_interests(
            resident_id=own, relatives=[], key=IDENTITY_KEY, provenance=BY_OFFICER
        )


def test_the_key_matters() -> None:
    number = resident_id()
    assert person_id_for(number, IDENTITY_KEY) != person_id_for(number, bytes(32))
    assert isinstance(person_id_for(number, IDENTITY_KEY), uuid.UUID)
