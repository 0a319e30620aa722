"""Late entries (补录): work done while a contract ran may be recorded after its last day, for
as many days as the late-entry window says; the contract in force on the work's day judges it."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.catalogue import WorkItem
from domain.clock import BUSINESS_TZ
from domain.contract import DEFAULT_LATE_ENTRY_DAYS, Contract
from domain.contractor import Contractor
from domain.errors import LateEntryWindowPassed, OutsideContract
from domain.identifiers import DivisionCode
from infra.settings import Settings, SettingsError
from tests.factories import BY_OFFICER
from tests.unit.test_purchasing import award, contractor

D = dt.date


def covers(
    contract: Contract, owner: Contractor, work_day: dt.date, recorded_on: dt.date, days: int = 30
) -> None:
    contract.check_covers(
        contractor=owner,
        work_item=WorkItem.PSYCHOLOGICAL_COUNSELLING,
        division=DivisionCode("440103001001"),
        at=dt.datetime.combine(work_day, dt.time(10), BUSINESS_TZ),
        recorded_on=recorded_on,
        late_entry_days=days,
    )


def test_the_default_window_is_thirty_days() -> None:
    assert DEFAULT_LATE_ENTRY_DAYS == 30
    assert Settings().late_entry_days == 30
    assert Settings.from_env({"RELIEF_LATE_ENTRY_DAYS": "0"}).late_entry_days == 0
    with pytest.raises(SettingsError):
        Settings.from_env({"RELIEF_LATE_ENTRY_DAYS": "-1"})


def test_work_of_the_term_is_entered_within_the_window_after_its_end() -> None:
    owner = contractor()
    contract = award(owner, end=D(2026, 6, 30))
    covers(contract, owner, D(2026, 6, 29), recorded_on=D(2026, 6, 30))
    covers(contract, owner, D(2026, 6, 29), recorded_on=D(2026, 7, 30))  # the 30th day after
    with pytest.raises(LateEntryWindowPassed, match="correction"):
        covers(contract, owner, D(2026, 6, 29), recorded_on=D(2026, 7, 31))
    covers(contract, owner, D(2026, 6, 29), recorded_on=D(2026, 8, 9), days=40)  # configured
    with pytest.raises(LateEntryWindowPassed):
        covers(contract, owner, D(2026, 6, 29), recorded_on=D(2026, 7, 1), days=0)


def test_work_after_the_term_stays_outside_however_promptly_it_is_entered() -> None:
    owner = contractor()
    contract = award(owner, end=D(2026, 6, 30))
    with pytest.raises(OutsideContract, match="outside the contract term") as refused:
        covers(contract, owner, D(2026, 7, 1), recorded_on=D(2026, 7, 1))
    assert not isinstance(refused.value, LateEntryWindowPassed)


def test_the_window_runs_from_the_contracts_last_day_termination_included() -> None:
    owner = contractor()
    contract = award(owner, end=D(2026, 12, 31))
    contract.terminate(
        effective_at=dt.datetime(2026, 5, 1, 9, tzinfo=BUSINESS_TZ),
        basis="contract",
        reason="r",
        provenance=BY_OFFICER,
    )
    assert contract.last_day() == D(2026, 5, 1)
    covers(contract, owner, D(2026, 4, 30), recorded_on=D(2026, 5, 31))
    with pytest.raises(LateEntryWindowPassed):
        covers(contract, owner, D(2026, 4, 30), recorded_on=D(2026, 6, 1))


def test_the_terms_in_force_on_the_work_day_judge_a_late_entry() -> None:
    """An amendment that takes a work item out from 1 June leaves May's work covered."""
    owner = contractor()
    contract = award(owner, end=D(2026, 6, 30))
    contract.amend(
        contractor=owner,
        today=D(2026, 5, 20),
        effective_from=D(2026, 6, 1),
        reason="counselling moved to another provider",
        work_items=["household_investigation"],
        provenance=BY_OFFICER,
    )
    covers(contract, owner, D(2026, 5, 31), recorded_on=D(2026, 7, 15))
    with pytest.raises(OutsideContract, match="not in the contract's scope"):
        covers(contract, owner, D(2026, 6, 1), recorded_on=D(2026, 7, 15))


def test_a_contract_takes_entries_from_its_start_to_the_end_of_the_window() -> None:
    contract = award(start=D(2026, 1, 1), end=D(2026, 6, 30))
    assert not contract.takes_entries_on(D(2025, 12, 31), 30)
    assert contract.takes_entries_on(D(2026, 1, 1), 30)
    assert contract.takes_entries_on(D(2026, 7, 30), 30)
    assert not contract.takes_entries_on(D(2026, 7, 31), 30)
    assert not contract.takes_entries_on(D(2026, 7, 1), 0)
