"""Supervision over the real store: investigations from red flags, closures that record the
sanctions in one save, the reviewer's status of alerts (and its rebuild), declared interests."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import RecordConflictError

from domain.commands.purchasing import (
    AmendContract,
    AssignStaff,
    EvaluateContract,
    HireStaff,
    RenewContract,
)
from domain.commands.supervision import (
    AddInvestigationNote,
    CloseInvestigation,
    DeclareInterests,
    OpenInvestigation,
    RecordFindings,
)
from domain.contract import Contract, EventAtPosition, EventOfAggregate, PenaltyRecord
from domain.errors import (
    ContractorBanned,
    InvalidIdentifier,
    InvalidState,
    InvalidValue,
    NotFound,
)
from domain.investigation import (
    BanOrder,
    CitedAlert,
    Investigation,
    PenaltyOrder,
    TerminationOrder,
    VerdictInput,
    ViolationOrder,
)
from domain.provenance import Provenance, Role
from domain.staff import StaffMember
from infra.projection_runner import rebuild
from infra.runtime import Runtime
from projections.red_flags.queries import query_alerts
from tests.factories import BY_OFFICER, BY_SUPERVISOR, resident_id
from tests.integration.helpers import projection_tables
from tests.integration.test_red_flags import (
    Flags,
    alerts,
    approved_case,
    contract_for,
    decide,
    positions,
    run,
    staff_actor,
)
from tests.scenario import application

pytestmark = pytest.mark.integration

UTC8 = dt.timezone(dt.timedelta(hours=8))


def raised_after_poor_evaluation(runtime: Runtime) -> tuple[Contract, list[dict[str, Any]]]:
    """Two contracts of one contractor, each raised in value after a poor evaluation: two
    alerts about the contractor."""
    ledger = runtime.ledger
    services = runtime.services
    today = runtime.services.clock.today()
    first, _ = contract_for(runtime, items=["care_and_nursing"])
    second, _ = contract_for(runtime, items=["care_and_nursing"], contractor_id=first.contractor_id)
    for contract in (first, second):
        services.purchasing.evaluate_contract(
            EvaluateContract(
                contract_id=contract.id,
                period_start=today - dt.timedelta(days=30),
                period_end=today - dt.timedelta(days=1),
                score="41",
                provenance=BY_SUPERVISOR,
            )
        )
        services.purchasing.amend_contract(
            AmendContract(
                contract_id=contract.id,
                reason="more households",
                value="90000",
                provenance=BY_OFFICER,
            )
        )
    found = alerts(runtime, "value_raised_after_poor_evaluation", contractor_id=first.contractor_id)
    assert len(found) == 2
    return ledger.get_contract(first.id), found


def cite(found: list[dict[str, Any]]) -> list[CitedAlert]:
    return [CitedAlert(a["alert_id"], a["rule"], tuple(a["evidence"])) for a in found]


def reviews(runtime: Runtime) -> dict[uuid.UUID, dict[str, Any]]:
    run(runtime)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        items, _ = query_alerts(cursor, limit=1000)
    return {a["alert_id"]: a for a in items}


def test_an_investigation_closed_with_a_violation_records_every_sanction_in_one_save(
    runtime: Runtime,
) -> None:
    ledger = runtime.ledger
    services = runtime.services
    contract, found = raised_after_poor_evaluation(runtime)
    contractor_id = contract.contractor_id
    assert {r["review_status"] for r in reviews(runtime).values()} == {"unreviewed"}

    investigation = services.supervision.open_investigation(
        OpenInvestigation(
            subject_kind="contractor",
            subject_id=contractor_id,
            alerts=cite(found),
            grounds="values raised right after failing evaluations",
            provenance=BY_SUPERVISOR,
        )
    )
    assert investigation.number == 1
    statuses = reviews(runtime)
    assert {statuses[a["alert_id"]]["review_status"] for a in found} == {"under_review"}
    assert statuses[found[0]["alert_id"]]["investigation_ids"] == [investigation.id]

    services.supervision.add_investigation_note(
        AddInvestigationNote(
            investigation_id=investigation.id,
            text="asked the purchaser for the raise memo",
            provenance=BY_SUPERVISOR,
        )
    )
    services.supervision.record_findings(
        RecordFindings(
            investigation_id=investigation.id,
            summary="the first raise paid for work never done; the second was justified",
            verdicts=(
                VerdictInput(found[0]["alert_id"], "confirmed"),
                VerdictInput(found[1]["alert_id"], "dismissed", "new households were added"),
            ),
            provenance=BY_SUPERVISOR,
        )
    )
    statuses = reviews(runtime)
    assert statuses[found[0]["alert_id"]]["review_status"] == "confirmed"
    assert statuses[found[1]["alert_id"]]["review_status"] == "dismissed"
    assert statuses[found[1]["alert_id"]]["review_reason"] == "new households were added"
    assert statuses[found[1]["alert_id"]]["new_evidence_since_review"] is False

    # The contract named must be the subject's: another contractor's is refused, nothing saved.
    other, _ = contract_for(runtime, items=["care_and_nursing"])
    head = runtime.head_position()
    with pytest.raises(InvalidValue) as foreign:
        services.supervision.close_investigation(
            CloseInvestigation(
                investigation_id=investigation.id,
                outcome="violation",
                summary="s",
                provenance=BY_SUPERVISOR,
                violation=ViolationOrder(other.id, "falsification", "grave", "d"),
            )
        )
    assert foreign.value.field == "violation.contract_id"
    # A sanction the domain refuses (a ban decided by a township) refuses the whole closure.
    confirmed_contract = uuid.UUID(found[0]["subject_id"])
    with pytest.raises(InvalidValue) as township:
        services.supervision.close_investigation(
            CloseInvestigation(
                investigation_id=investigation.id,
                outcome="violation",
                summary="s",
                provenance=BY_SUPERVISOR,
                violation=ViolationOrder(
                    confirmed_contract,
                    "falsification",
                    "grave",
                    "invoiced work never done",
                    ban=BanOrder(dt.date(2026, 1, 1), dt.date(2028, 12, 31), "fraud", "440103001"),
                ),
            )
        )
    assert township.value.field == "violation.ban.deciding_unit"
    assert runtime.head_position() == head

    today = runtime.services.clock.today()
    now = runtime.services.clock.now()
    closed = services.supervision.close_investigation(
        CloseInvestigation(
            investigation_id=investigation.id,
            outcome="violation",
            summary="falsified the basis of a value raise",
            provenance=BY_SUPERVISOR,
            violation=ViolationOrder(
                confirmed_contract,
                "falsification",
                "grave",
                "invoiced work never done",
                penalty=PenaltyOrder("fine", "contract art. 12", Decimal("20000")),
                termination=TerminationOrder(now, "contract", "falsified records"),
                ban=BanOrder(today, today + dt.timedelta(days=3 * 365), "falsification", "440103"),
            ),
        )
    )
    assert closed.closure is not None and closed.closure.violation_number == 1
    assert [type(s).__name__ for s in closed.closure.sanctions] == [
        "ViolationSanction",
        "PenaltySanction",
        "TerminationSanction",
        "BanSanction",
    ]
    sanctioned = ledger.get_contract(confirmed_contract)
    assert sanctioned.terminated_at == now
    assert sanctioned.penalties == [
        PenaltyRecord(violation=1, kind="fine", basis="contract art. 12", amount=Decimal("20000"))
    ]
    evidence = sanctioned.violations[1].evidence
    assert tuple(EventAtPosition(p) for p in found[0]["evidence"]) == evidence[:-1]
    assert evidence[-1] == EventOfAggregate(investigation.id, 3)
    contractor = ledger.get_contractor(contractor_id)
    assert contractor.ban_on(today) is not None
    with pytest.raises(ContractorBanned):
        services.purchasing.renew_contract(
            RenewContract(
                contract_id=uuid.UUID(found[1]["subject_id"]),
                new_end=today + dt.timedelta(days=400),
                added_value="1",
                reason="more",
                provenance=BY_OFFICER,
            )
        )

    # One save: the closure and the sanctions are consecutive positions with one correlation.
    notifications = ledger.recorder.select_notifications(start=head + 1, limit=100)
    topics = [n.topic.rsplit(".", 1)[-1] for n in notifications]
    assert sorted(topics) == sorted(
        ["Closed", "ViolationRecorded", "PenaltyImposed", "Terminated", "Banned"]
    )
    correlations = {
        ledger.mapper.to_domain_event(n).provenance.correlation_id for n in notifications
    }
    assert correlations == {f"investigation:{investigation.id}"}

    # Closed once, then nothing more.
    for refused in (
        lambda: services.supervision.add_investigation_note(
            AddInvestigationNote(
                investigation_id=investigation.id, text="x", provenance=BY_SUPERVISOR
            )
        ),
        lambda: services.supervision.close_investigation(
            CloseInvestigation(
                investigation_id=investigation.id,
                outcome="no_case_to_answer",
                summary="x",
                provenance=BY_SUPERVISOR,
            )
        ),
    ):
        with pytest.raises(InvalidState):
            refused()
    assert reviews(runtime)[found[0]["alert_id"]]["review_status"] == "confirmed"


def test_investigations_are_numbered_per_subject_and_found_without_a_read_model(
    runtime: Runtime,
) -> None:
    ledger = runtime.ledger
    services = runtime.services
    contract, found = raised_after_poor_evaluation(runtime)
    opened = [
        services.supervision.open_investigation(
            OpenInvestigation(
                subject_kind="contractor",
                subject_id=contract.contractor_id,
                alerts=cite(found[:1]),
                grounds=f"look {n}",
                provenance=BY_SUPERVISOR,
            )
        )
        for n in range(3)
    ]
    assert [i.number for i in opened] == [1, 2, 3]
    mine = runtime.services.supervision.investigations_of("contractor", contract.contractor_id)
    assert [i.id for i in mine] == [i.id for i in opened]
    assert runtime.services.supervision.investigations_of("staff", contract.contractor_id) == []
    # Two supervisors opening the next one at once: the same id, one of them is refused.
    racing = Investigation.open(
        subject_kind="contractor",
        subject_id=contract.contractor_id,
        contractor_id=contract.contractor_id,
        number=4,
        alerts=cite(found[:1]),
        grounds="race",
        provenance=BY_SUPERVISOR,
    )
    services.supervision.open_investigation(
        OpenInvestigation(
            subject_kind="contractor",
            subject_id=contract.contractor_id,
            alerts=cite(found[:1]),
            grounds="first",
            provenance=BY_SUPERVISOR,
        )
    )
    with pytest.raises(RecordConflictError):
        ledger.save(racing)
    # The newest citation decides the alert's status; every citing investigation is listed.
    statuses = reviews(runtime)
    alert = statuses[found[0]["alert_id"]]
    assert alert["review_status"] == "under_review"
    assert (
        alert["investigation_id"]
        == runtime.services.supervision.investigations_of("contractor", contract.contractor_id)[
            -1
        ].id
    )
    assert len(alert["investigation_ids"]) == 4
    assert alert["investigation_ids"] == sorted(alert["investigation_ids"])
    with pytest.raises(NotFound) as missing:
        services.supervision.open_investigation(
            OpenInvestigation(
                subject_kind="contractor",
                subject_id=uuid.uuid4(),
                alerts=cite(found[:1]),
                grounds="g",
                provenance=BY_SUPERVISOR,
            )
        )
    assert missing.value.field == "subject_id"


def test_no_case_to_answer_and_staff_subjects(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    staff = services.purchasing.hire_staff(
        HireStaff(name="Zhou", kind="approver", government_unit="440103", provenance=BY_OFFICER)
    )
    services.purchasing.assign_staff(
        AssignStaff(staff_id=staff.id, division="440103", provenance=BY_OFFICER)
    )
    # Zhou approves a case, then declares the applicant as a relative: a conflict of interest.
    case = application(runtime, "440103")
    decide(runtime, case, decider=staff_actor(str(staff.id), Role.APPROVER))
    declared = services.supervision.declare_interests(
        DeclareInterests(
            staff_id=staff.id,
            resident_id=resident_id(),
            relatives=((case.applicant_id, "spouse"),),
            provenance=Provenance(actor=staff_actor(str(staff.id)).actor),
        )
    )
    assert isinstance(declared, StaffMember) and len(declared.relatives) == 1
    found = alerts(runtime, "conflict_of_interest")
    assert [a["subject_id"] for a in found] == [str(staff.id)]
    investigation = services.supervision.open_investigation(
        OpenInvestigation(
            subject_kind="staff",
            subject_id=staff.id,
            alerts=cite(found),
            grounds="approved a declared spouse's case",
            provenance=BY_SUPERVISOR,
        )
    )
    assert investigation.contractor_id is None
    services.supervision.record_findings(
        RecordFindings(
            investigation_id=investigation.id,
            summary="the declaration was wrong: the applicant is a namesake",
            verdicts=(
                VerdictInput(found[0]["alert_id"], "dismissed", "a namesake, not the spouse"),
            ),
            provenance=BY_SUPERVISOR,
        )
    )
    with pytest.raises(InvalidValue) as contradictory:
        services.supervision.close_investigation(
            CloseInvestigation(
                investigation_id=investigation.id,
                outcome="no_case_to_answer",
                summary="no tie",
                provenance=BY_SUPERVISOR,
                violation=ViolationOrder(uuid.uuid4(), "breach", "minor", "d"),
            )
        )
    assert contradictory.value.field == "violation"
    closed = services.supervision.close_investigation(
        CloseInvestigation(
            investigation_id=investigation.id,
            outcome="no_case_to_answer",
            summary="no tie to the applicant",
            provenance=BY_SUPERVISOR,
        )
    )
    assert closed.closure is not None and closed.closure.outcome == "no_case_to_answer"
    status = reviews(runtime)[found[0]["alert_id"]]
    assert (status["review_status"], status["review_reason"]) == (
        "dismissed",
        "a namesake, not the spouse",
    )
    # A newer event behind the alert after the verdict is shown as such.
    services.supervision.declare_interests(
        DeclareInterests(
            staff_id=staff.id,
            resident_id=resident_id(),
            relatives=((case.applicant_id, "sibling"),),
            provenance=BY_OFFICER,
        )
    )
    status = reviews(runtime)[found[0]["alert_id"]]
    assert status["review_status"] == "dismissed" and status["new_evidence_since_review"] is True
    # Nothing about the declaration reveals the numbers.
    events = list(ledger.events.get(staff.id))
    assert case.applicant_id not in repr([vars(e) for e in events])


def test_the_review_status_survives_a_rebuild(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    contract, found = raised_after_poor_evaluation(runtime)
    approved_case(runtime)
    first = services.supervision.open_investigation(
        OpenInvestigation(
            subject_kind="contractor",
            subject_id=contract.contractor_id,
            alerts=cite(found),
            grounds="g",
            provenance=BY_SUPERVISOR,
        )
    )
    services.supervision.record_findings(
        RecordFindings(
            investigation_id=first.id,
            summary="s",
            verdicts=(VerdictInput(found[0]["alert_id"], "dismissed", "explained"),),
            provenance=BY_SUPERVISOR,
        )
    )
    second = services.supervision.open_investigation(
        OpenInvestigation(
            subject_kind="contractor",
            subject_id=contract.contractor_id,
            alerts=cite(found[:1]),
            grounds="g again",
            provenance=BY_SUPERVISOR,
        )
    )
    services.supervision.record_findings(
        RecordFindings(
            investigation_id=second.id,
            summary="s",
            verdicts=(VerdictInput(found[0]["alert_id"], "confirmed"),),
            provenance=BY_SUPERVISOR,
        )
    )
    run(runtime, batch=3)
    incremental = projection_tables(runtime, "rm_red_flags_g1")
    reviewed = {row[0]: row for row in incremental["alert_reviews"]}
    assert reviewed[found[0]["alert_id"]][1] == "confirmed"
    assert reviewed[found[1]["alert_id"]][1] == "under_review"
    assert {row[0] for row in incremental["alert_reviews"]} == {
        row[0] for row in incremental["alerts"]
    }
    rebuild(runtime.pool, ledger.recorder, ledger.mapper, Flags)
    assert projection_tables(runtime, "rm_red_flags_g2") == incremental
    assert positions(ledger, first.id)  # the investigation's events are in the log


def test_declared_interests_through_the_ledger(runtime: Runtime) -> None:
    ledger = runtime.ledger
    services = runtime.services
    staff = services.purchasing.hire_staff(
        HireStaff(
            name="Sun", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER
        )
    )
    with pytest.raises(InvalidIdentifier) as invalid:
        services.supervision.declare_interests(
            DeclareInterests(
                staff_id=staff.id,
                resident_id="440103198503071235",
                relatives=(),
                provenance=BY_OFFICER,
            )
        )
    assert invalid.value.field == "resident_id"
    with pytest.raises(NotFound):
        services.supervision.declare_interests(
            DeclareInterests(
                staff_id=uuid.uuid4(),
                resident_id=resident_id(),
                relatives=(),
                provenance=BY_OFFICER,
            )
        )
    own = resident_id()
    services.supervision.declare_interests(
        DeclareInterests(staff_id=staff.id, resident_id=own, relatives=(), provenance=BY_OFFICER)
    )
    assert ledger.get_staff(staff.id).person_id == runtime.services.cases.person_id(own)
