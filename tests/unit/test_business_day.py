"""The business day is China Standard Time whatever offset a moment was sent with.

Property tests without a property-testing library: every quarter-hour UTC offset from -12:00 to
+14:00 (the whole range clients can send), and moments drawn with many seeds within two hours
either side of a business midnight. The same instant, written in any offset, must get the same
answer, and that answer must be the one the China Standard Time calendar day gives.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator

import pytest

from domain.case import ReliefCase
from domain.catalogue import WorkItem
from domain.clock import BUSINESS_TZ, SetClock, business_date
from domain.contract import Contract
from domain.contractor import Contractor
from domain.errors import DomainError, OutsideContract
from domain.identifiers import DivisionCode
from tests.factories import BY_CLERK, BY_SUPERVISOR, officer
from tests.unit.test_case import VILLAGE, Contracts, approved
from tests.unit.test_purchasing import award, contractor

D = dt.date
#: Every offset a client may send, on a quarter-hour grid (-12:00 … +14:00).
OFFSETS = [dt.timezone(dt.timedelta(minutes=m)) for m in range(-12 * 60, 14 * 60 + 1, 15)]
SEEDS = range(40)


def around_midnight(day: dt.date, seed: int) -> dt.datetime:
    """A moment within two hours either side of the business midnight that begins ``day``."""
    midnight = dt.datetime.combine(day, dt.time.min, BUSINESS_TZ)
    return midnight + dt.timedelta(seconds=random.Random(seed).randint(-7200, 7199))


def written_in_every_offset(moment: dt.datetime) -> Iterator[dt.datetime]:
    for offset in OFFSETS:
        yield moment.astimezone(offset)


def outcome(attempt: Callable[[], object]) -> type[BaseException] | None:
    try:
        attempt()
    except DomainError as refusal:
        return type(refusal)
    return None


def test_the_offsets_cover_the_range_clients_send() -> None:
    assert OFFSETS[0].utcoffset(None) == dt.timedelta(hours=-12)
    assert OFFSETS[-1].utcoffset(None) == dt.timedelta(hours=14)
    assert dt.timezone(dt.timedelta(hours=5, minutes=45)) in OFFSETS  # Nepal


@pytest.mark.parametrize("seed", SEEDS)
def test_the_business_date_of_an_instant_does_not_depend_on_its_offset(seed: int) -> None:
    moment = around_midnight(D(2026, 7, 1), seed)
    expected = moment.astimezone(BUSINESS_TZ).date()
    for written in written_in_every_offset(moment):
        assert business_date(written) == expected
        assert SetClock(written).today() == expected


def test_the_issues_example_a_service_at_0630_beijing_after_the_term_sent_in_utc() -> None:
    """Regression (issue 17): a term ending 30 June; a service at 06:30 Beijing time on 1 July,
    sent as 22:30 UTC on 30 June, lies outside the term (it was accepted as inside)."""
    owner = contractor()
    contract = award(owner, end=D(2026, 6, 30))
    sent = dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC)
    assert business_date(sent) == D(2026, 7, 1)
    with pytest.raises(OutsideContract, match="outside the contract term"):
        contract.check_covers(
            contractor=owner,
            work_item=WorkItem.PSYCHOLOGICAL_COUNSELLING,
            division=DivisionCode("440103001001"),
            at=sent,
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_a_contracts_term_is_judged_on_the_business_day(seed: int) -> None:
    owner = contractor()
    contract = award(owner, start=D(2026, 1, 1), end=D(2026, 6, 30))
    for boundary in (D(2026, 1, 1), D(2026, 7, 1)):  # the first day in, the first day out
        moment = around_midnight(boundary, seed)
        day = business_date(moment)
        inside = D(2026, 1, 1) <= day <= D(2026, 6, 30)
        for written in written_in_every_offset(moment):
            got = outcome(
                lambda w=written: contract.check_covers(  # type: ignore[misc]
                    contractor=owner,
                    work_item=WorkItem.PSYCHOLOGICAL_COUNSELLING,
                    division=DivisionCode("440103001001"),
                    at=w,
                )
            )
            assert got == (None if inside else OutsideContract), (written, day)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_ban_is_judged_on_the_business_day(seed: int) -> None:
    owner: Contractor = contractor()
    contract: Contract = award(owner)
    owner.ban(
        start=D(2026, 8, 1),
        end=D(2026, 8, 31),
        reason="falsified visits",
        deciding_unit="440103",
        provenance=BY_SUPERVISOR,
    )
    for boundary in (D(2026, 8, 1), D(2026, 9, 1)):
        moment = around_midnight(boundary, seed)
        banned = D(2026, 8, 1) <= business_date(moment) <= D(2026, 8, 31)
        for written in written_in_every_offset(moment):
            try:
                contract.check_covers(
                    contractor=owner,
                    work_item=WorkItem.PSYCHOLOGICAL_COUNSELLING,
                    division=DivisionCode("440103001001"),
                    at=written,
                )
                refused = False
            except OutsideContract as refusal:
                assert "banned" in str(refusal)
                refused = True
            assert refused == banned, written


@pytest.mark.parametrize("seed", range(10))
def test_a_service_after_a_death_is_judged_on_the_business_day(seed: int) -> None:
    case, contracts = approved(), Contracts()
    case.note_beneficiary_death(on=D(2026, 6, 9), provenance=BY_CLERK)
    moment = around_midnight(D(2026, 6, 10), seed)
    after_death = business_date(moment) > D(2026, 6, 9)
    for written in written_in_every_offset(moment):
        got = outcome(
            lambda w=written: case.record_service(  # type: ignore[misc]
                work_item="psychological_counselling",
                contract_id=None,
                start=w,
                end=w + dt.timedelta(minutes=30),
                place=VILLAGE,
                check=contracts,
                now=dt.datetime(2026, 6, 15, tzinfo=BUSINESS_TZ),
                provenance=officer(),
            )
        )
        assert (got is not None) == after_death, (written, got)


@pytest.mark.parametrize("seed", range(10))
def test_a_payment_month_begins_on_the_business_day(seed: int) -> None:
    """July is paid from the business 1 July on: the clock's today, whatever offset it shows."""
    moment = around_midnight(D(2026, 7, 1), seed)
    begun = business_date(moment) >= D(2026, 7, 1)
    for written in written_in_every_offset(moment):
        case: ReliefCase = approved()
        got = outcome(
            lambda w=written, c=case: c.record_payment(  # type: ignore[misc]
                period="2026-07", amount=900, today=SetClock(w).today(), provenance=officer()
            )
        )
        assert (got is None) == begun, (written, got)


@pytest.mark.parametrize("seed", range(10))
def test_contract_staff_are_active_by_the_business_day(seed: int) -> None:
    from domain.staff import StaffMember
    from tests.factories import BY_OFFICER

    owner = contractor()
    contract = award(owner, end=D(2026, 6, 30))
    staff = StaffMember.hire(
        name="Wang", kind="village_coordinator", contract=contract, provenance=BY_OFFICER
    )
    staff.assign(division="440103001001", provenance=BY_OFFICER, contract=contract)
    moment = around_midnight(D(2026, 7, 1), seed)
    running = business_date(moment) <= D(2026, 6, 30)
    for written in written_in_every_offset(moment):
        assert staff.is_active_on(SetClock(written).today(), contract) == running
