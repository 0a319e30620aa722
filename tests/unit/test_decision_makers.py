"""Every decision-maker is a staff record: approvers as a staff kind, sign-ins linked to staff
records, and the judgement of whether the record behind an actor may decide a case
(domain/staff.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from domain.errors import (
    EmployedOnce,
    GovernmentWorkOnly,
    InvalidValue,
    NotAStaffMember,
    SignInTaken,
    StaffAssignment,
    StaffRemoved,
)
from domain.provenance import Actor, Provenance, Role
from domain.staff import SignIn, StaffKind, StaffMember, check_decision_maker, sign_in_id
from tests.factories import BY_OFFICER, contractor_staff
from tests.unit.test_purchasing import award, contractor

TODAY = dt.date(2026, 6, 15)
ISSUER = "https://idp.example.gov.cn"


def approver_record(county: str = "440103", assign: str | None = "440103") -> StaffMember:
    staff = StaffMember.hire(
        name="Wang", kind="approver", government_unit=county, provenance=BY_OFFICER
    )
    if assign is not None:
        staff.assign(division=assign, provenance=BY_OFFICER)
    return staff


def acting(staff: StaffMember | str, role: Role, org: str = "440103") -> Provenance:
    who = str(staff.id) if isinstance(staff, StaffMember) else staff
    return Provenance(actor=Actor(id=who, role=role, organisation=org, subject="wang@mz"))


class TestApprovers:
    def test_an_approver_is_hired_by_the_county_bureau_and_assigned_to_the_county(self) -> None:
        staff = approver_record()
        assert staff.kind is StaffKind.APPROVER
        assert staff.summary(TODAY)["kind"] == "approver"
        assert staff.is_active_on(TODAY)

    def test_an_approver_is_assigned_at_county_level_only(self) -> None:
        staff = approver_record(assign=None)
        with pytest.raises(StaffAssignment) as refused:
            staff.assign(division="440103001", provenance=BY_OFFICER)
        assert refused.value.field == "division"

    def test_approval_is_never_bought_under_a_contract(self) -> None:
        with pytest.raises(EmployedOnce) as refused:
            StaffMember.hire(name="Wang", kind="approver", contract=award(), provenance=BY_OFFICER)
        assert refused.value.field == "contract_id"

    def test_an_approver_carries_the_persons_id_like_other_staff(self) -> None:
        from domain.person import person_id_for
        from tests.factories import IDENTITY_KEY, resident_id

        number = resident_id()
        staff = StaffMember.hire(
            name="Wang",
            kind="approver",
            government_unit="440103",
            resident_id=number,
            key=IDENTITY_KEY,
            provenance=BY_OFFICER,
        )
        assert staff.person_id == person_id_for(number, IDENTITY_KEY)


class TestSignIns:
    def test_a_link_is_an_event_and_shows_on_the_record(self) -> None:
        staff = approver_record()
        staff.link_sign_in(issuer=ISSUER, subject="wang@mz", provenance=BY_OFFICER)
        linked = staff.collect_events()[-1]
        assert isinstance(linked, StaffMember.SignInLinked)
        assert (linked.issuer, linked.subject) == (ISSUER, "wang@mz")
        assert staff.summary(TODAY)["sign_ins"] == [{"issuer": ISSUER, "subject": "wang@mz"}]

    def test_the_same_link_twice_is_refused(self) -> None:
        staff = approver_record()
        staff.link_sign_in(issuer=ISSUER, subject="wang@mz", provenance=BY_OFFICER)
        with pytest.raises(SignInTaken) as refused:
            staff.link_sign_in(issuer=ISSUER, subject="wang@mz", provenance=BY_OFFICER)
        assert refused.value.field == "subject"

    def test_an_empty_subject_is_refused_naming_the_field(self) -> None:
        with pytest.raises(InvalidValue) as refused:
            approver_record().link_sign_in(issuer=ISSUER, subject="  ", provenance=BY_OFFICER)
        assert refused.value.field == "subject"

    def test_links_are_set_by_the_government_side_on_records_not_removed(self) -> None:
        staff = approver_record()
        with pytest.raises(GovernmentWorkOnly):
            staff.link_sign_in(
                issuer=ISSUER,
                subject="wang@mz",
                provenance=contractor_staff(contractor().credit_code),
            )
        staff.remove(on=TODAY, reason="left", provenance=BY_OFFICER)
        with pytest.raises(StaffRemoved):
            staff.link_sign_in(issuer=ISSUER, subject="wang@mz", provenance=BY_OFFICER)

    def test_an_unlink_removes_the_link_and_only_a_link_there_is(self) -> None:
        staff = approver_record()
        with pytest.raises(InvalidValue) as refused:
            staff.unlink_sign_in(issuer=ISSUER, subject="wang@mz", provenance=BY_OFFICER)
        assert refused.value.field == "subject"
        staff.link_sign_in(issuer=ISSUER, subject="wang@mz", provenance=BY_OFFICER)
        staff.unlink_sign_in(issuer=ISSUER, subject="wang@mz", provenance=BY_OFFICER)
        assert isinstance(staff.collect_events()[-1], StaffMember.SignInUnlinked)
        assert staff.sign_ins == set()

    def test_a_sign_in_is_held_by_one_active_record(self) -> None:
        first, second = approver_record(), approver_record()
        held = SignIn.link(
            issuer=ISSUER,
            subject="wang@mz",
            staff=first,
            holder=None,
            existing=None,
            provenance=BY_OFFICER,
        )
        assert held.id == sign_in_id(ISSUER, "wang@mz") and held.staff_id == first.id
        with pytest.raises(SignInTaken) as refused:
            SignIn.link(
                issuer=ISSUER,
                subject="wang@mz",
                staff=second,
                holder=first,
                existing=held,
                provenance=BY_OFFICER,
            )
        assert refused.value.field == "subject"
        first.remove(on=TODAY, reason="left", provenance=BY_OFFICER)
        SignIn.link(
            issuer=ISSUER,
            subject="wang@mz",
            staff=second,
            holder=first,
            existing=held,
            provenance=BY_OFFICER,
        )
        assert held.staff_id == second.id

    def test_an_unlink_releases_only_the_records_own_hold(self) -> None:
        first, second = approver_record(), approver_record()
        held = SignIn.link(
            issuer=ISSUER,
            subject="wang@mz",
            staff=first,
            holder=None,
            existing=None,
            provenance=BY_OFFICER,
        )
        held.unlink(staff_id=second.id, provenance=BY_OFFICER)
        assert held.staff_id == first.id
        held.unlink(staff_id=first.id, provenance=BY_OFFICER)
        assert held.staff_id is None

    def test_the_id_of_a_sign_in_depends_on_issuer_and_subject(self) -> None:
        assert sign_in_id(ISSUER, "a") != sign_in_id(ISSUER, "b")
        assert sign_in_id(ISSUER, "a") != sign_in_id("https://other", "a")


class TestDecisionMakers:
    def check(self, staff: StaffMember | None, by: Provenance, **kw: object) -> None:
        fields: dict[str, object] = {"county": "440103", "contractor_id": None, "today": TODAY}
        fields.update(kw)
        check_decision_maker(staff, by, **fields)  # type: ignore[arg-type]

    def test_the_countys_active_approver_decides(self) -> None:
        staff = approver_record()
        self.check(staff, acting(staff, Role.APPROVER))

    def test_an_actor_with_no_staff_record_is_refused_naming_the_actor(self) -> None:
        with pytest.raises(NotAStaffMember) as refused:
            self.check(None, acting("approver-wang", Role.APPROVER))
        assert refused.value.field == "actor.id"
        assert refused.value.rule == "not-a-staff-member"
        assert "approver-wang" in refused.value.message and "wang@mz" in refused.value.message

    def test_a_record_of_another_kind_is_refused(self) -> None:
        staff = StaffMember.hire(
            name="Li", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER
        )
        staff.assign(division="440103", provenance=BY_OFFICER)
        self.check(staff, acting(staff, Role.HANDLING_STAFF))
        with pytest.raises(NotAStaffMember, match="handling_staff"):
            self.check(staff, acting(staff, Role.APPROVER))

    def test_an_unassigned_or_removed_record_is_refused(self) -> None:
        staff = approver_record(assign=None)
        with pytest.raises(NotAStaffMember, match="no active staff record"):
            self.check(staff, acting(staff, Role.APPROVER))
        staff = approver_record()
        staff.remove(on=TODAY, reason="left", provenance=BY_OFFICER)
        with pytest.raises(NotAStaffMember, match="no active staff record"):
            self.check(staff, acting(staff, Role.APPROVER))

    def test_another_countys_approver_is_refused(self) -> None:
        staff = approver_record("440104", "440104")
        with pytest.raises(NotAStaffMember, match="county 440103"):
            self.check(staff, acting(staff, Role.APPROVER))

    def test_contractor_staff_decide_for_their_own_contractor_only(self) -> None:
        contract = award(today=TODAY)
        staff = StaffMember.hire(
            name="Zhao", kind="handling_staff", contract=contract, provenance=BY_OFFICER
        )
        staff.assign(division="440103001", provenance=BY_OFFICER, contract=contract)
        by = acting(staff, Role.CONTRACTOR_STAFF, "52440103MA0000000X")
        self.check(staff, by, contractor_id=contract.contractor_id, contract=contract)
        with pytest.raises(NotAStaffMember, match="contractor"):
            self.check(staff, by, contractor_id=uuid.uuid4(), contract=contract)
        with pytest.raises(NotAStaffMember, match="no active"):
            self.check(staff, by, contractor_id=contract.contractor_id, contract=None)

    def test_roles_that_are_no_staff_are_left_to_the_cases_own_rules(self) -> None:
        self.check(None, acting("supervisor-1", Role.SUPERVISOR, "4401"))
