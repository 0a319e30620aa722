"""Purchasing on the real store: the award/ban race and duplicate registration."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from eventsourcing.persistence import RecordConflictError

from domain.commands.purchasing import AwardContract, BanContractor, RegisterContractor
from domain.contractor import Contractor
from domain.errors import ContractorBanned, Duplicate
from infra.runtime import Runtime
from tests.factories import BY_OFFICER, BY_SUPERVISOR, credit_code

pytestmark = pytest.mark.integration

AWARD = {
    "purchaser": "440103",
    "work_items": ["household_investigation"],
    "service_area": ["440103001"],
    "start": dt.date(2026, 1, 1),
    "end": dt.date(2026, 12, 31),
    "value": "50000",
    "funding_source": "relief_work_funds",
}


def test_a_credit_code_registers_once(runtime: Runtime) -> None:
    code = credit_code()
    runtime.services.purchasing.register_contractor(
        RegisterContractor(
            name="A",
            contractor_type="social_organisation",
            credit_code=code,
            institution_class=None,
            provenance=BY_OFFICER,
        )
    )
    with pytest.raises(Duplicate):
        runtime.services.purchasing.register_contractor(
            RegisterContractor(
                name="B",
                contractor_type="social_organisation",
                credit_code=code,
                institution_class=None,
                provenance=BY_OFFICER,
            )
        )


def test_an_award_and_a_ban_at_the_same_moment_never_both_succeed(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    conflicts = 0
    for round_ in range(25):
        contractor = services.purchasing.register_contractor(
            RegisterContractor(
                name=f"Race {round_}",
                contractor_type="social_organisation",
                credit_code=credit_code(),
                institution_class=None,
                provenance=BY_OFFICER,
            )
        )
        barrier = threading.Barrier(2)
        outcome: dict[str, str] = {}

        def award(contractor_id=contractor.id, barrier=barrier, outcome=outcome) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            try:
                services.purchasing.award_contract(
                    AwardContract(contractor_id=contractor_id, provenance=BY_OFFICER, **AWARD)
                )  # type: ignore[arg-type]
                outcome["award"] = "ok"
            except (RecordConflictError, ContractorBanned) as error:
                outcome["award"] = type(error).__name__

        def ban(contractor_id=contractor.id, barrier=barrier, outcome=outcome) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            try:
                services.purchasing.ban_contractor(
                    BanContractor(
                        contractor_id=contractor_id,
                        start=today,
                        end=today + dt.timedelta(days=365),
                        reason="fraud",
                        deciding_unit="440103",
                        provenance=BY_SUPERVISOR,
                    )
                )
                outcome["ban"] = "ok"
            except RecordConflictError as error:
                outcome["ban"] = type(error).__name__

        threads = [threading.Thread(target=award), threading.Thread(target=ban)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # The invariant, from the global log: no contract is awarded after the ban committed.
        with runtime.pool.connection() as conn:
            ban_position = conn.execute(
                "SELECT min(notification_id) FROM relief_events WHERE originator_id = %s"
                " AND topic LIKE %s",
                (contractor.id, "%Contractor.Banned"),
            ).fetchone()[0]
            award_position = None
            if "contract" in outcome:
                award_position = conn.execute(
                    "SELECT notification_id FROM relief_events WHERE originator_id = %s"
                    " AND originator_version = 1",
                    (outcome["contract"],),
                ).fetchone()[0]
        if ban_position is not None and award_position is not None:
            assert award_position < ban_position, outcome
        assert "ok" in (outcome.get("award"), outcome.get("ban"))
        if (outcome.get("award"), outcome.get("ban")).count("ok") == 1:
            conflicts += 1
        assert isinstance(ledger.get_contractor(contractor.id), Contractor)
    assert conflicts > 0, "the two commands never actually raced"
