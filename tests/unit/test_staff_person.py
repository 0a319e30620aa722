"""A staff record names its person: the blind index of the resident ID given at hire."""

from __future__ import annotations

import pytest

from domain.errors import DeclaredInterests, InvalidIdentifier
from domain.person import person_id_for
from domain.staff import StaffMember
from tests.factories import BY_OFFICER, IDENTITY_KEY, resident_id
from tests.unit.test_purchasing import award


def test_a_hire_keeps_only_the_blind_index_of_the_persons_id() -> None:
    number = resident_id()
    staff = StaffMember.hire(
        name="Li",
        kind="handling_staff",
        contract=award(),
        resident_id=number,
        key=IDENTITY_KEY,
        provenance=BY_OFFICER,
    )
    assert staff.person_id == person_id_for(number, IDENTITY_KEY)
    hired = staff.collect_events()[0]
    assert number not in repr(vars(hired))
    assert StaffMember.Hired.class_version == 2
    old: dict[str, object] = {"name": "Li"}
    StaffMember.Hired.upcast_v1_v2(old)
    assert old["person_id"] is None


def test_a_declaration_must_name_the_person_hired() -> None:
    number = resident_id()
    staff = StaffMember.hire(
        name="Li",
        kind="handling_staff",
        government_unit="440103",
        resident_id=number,
        key=IDENTITY_KEY,
        provenance=BY_OFFICER,
    )
    with pytest.raises(DeclaredInterests) as refused:
        staff.declare_interests(
            resident_id=resident_id(), relatives=[], key=IDENTITY_KEY, provenance=BY_OFFICER
        )
    assert refused.value.field == "resident_id"
    staff.declare_interests(
        resident_id=number, relatives=[], key=IDENTITY_KEY, provenance=BY_OFFICER
    )
    assert staff.person_id == person_id_for(number, IDENTITY_KEY)


def test_a_malformed_id_hires_no_one() -> None:
    with pytest.raises(InvalidIdentifier):
        StaffMember.hire(
            name="Li",
            kind="handling_staff",
            government_unit="440103",
            resident_id="440103198503071235",
            key=IDENTITY_KEY,
            provenance=BY_OFFICER,
        )
