"""Misconduct investigations (调查): who opens them, what they cite, verdicts, one closure."""

from __future__ import annotations

import uuid

import pytest

from domain.contract import EventAtPosition, EventOfAggregate
from domain.errors import InvalidState, InvalidValue, NotPermitted
from domain.investigation import (
    CitedAlert,
    Investigation,
    Outcome,
    RecordedViolation,
    SubjectKind,
    VerdictInput,
    ViolationSanction,
    investigation_id_for,
)
from domain.provenance import Actor, Provenance, Role
from tests.factories import BY_APPROVER, BY_OFFICER, BY_SUPERVISOR, contractor_staff, credit_code

CONTRACTOR, CONTRACT = uuid.uuid4(), uuid.uuid4()
FIRST, SECOND = uuid.uuid4(), uuid.uuid4()
ANOTHER_SUPERVISOR = Provenance(
    actor=Actor(id="supervisor-2", role=Role.SUPERVISOR, organisation="4401")
)


def alerts() -> list[CitedAlert]:
    return [
        CitedAlert(FIRST, "work_outside_scope", (12, 7, 12)),
        CitedAlert(SECOND, "value_raised_after_poor_evaluation", (30, 31)),
    ]


def opened(**overrides: object) -> Investigation:
    fields: dict[str, object] = {
        "subject_kind": "contractor",
        "subject_id": CONTRACTOR,
        "contractor_id": CONTRACTOR,
        "number": 1,
        "alerts": alerts(),
        "grounds": "services recorded outside the contract's scope",
        "provenance": BY_SUPERVISOR,
    }
    fields.update(overrides)
    return Investigation.open(**fields)  # type: ignore[arg-type]


def judged(investigation: Investigation, first: str, second: str) -> Investigation:
    investigation.record_findings(
        summary="visited three households; two never received the services",
        verdicts=[
            VerdictInput(FIRST, first, None if first == "confirmed" else "explained"),
            VerdictInput(SECOND, second, None if second == "confirmed" else "explained"),
        ],
        provenance=BY_SUPERVISOR,
    )
    return investigation


def violation(number: int = 1, contractor_id: uuid.UUID = CONTRACTOR) -> RecordedViolation:
    return RecordedViolation(
        contract_id=CONTRACT,
        contractor_id=contractor_id,
        number=number,
        sanctions=(ViolationSanction(CONTRACT, number),),
    )


def test_only_supervision_opens_an_investigation() -> None:
    for by in (BY_OFFICER, BY_APPROVER, contractor_staff(credit_code())):
        with pytest.raises(NotPermitted) as refused:
            opened(provenance=by)
        assert refused.value.field == "actor.role"
    investigation = opened()
    assert investigation.is_open and investigation.opened_by == "supervisor-1"


def test_the_id_is_the_subjects_numbered_investigation() -> None:
    investigation = opened(number=3)
    assert investigation.id == investigation_id_for(SubjectKind.CONTRACTOR, CONTRACTOR, 3)
    assert investigation.id != investigation_id_for(SubjectKind.STAFF, CONTRACTOR, 3)
    assert investigation.number == 3
    with pytest.raises(InvalidValue):
        opened(number=0)


def test_an_investigation_cites_alerts_with_their_evidence() -> None:
    with pytest.raises(InvalidValue) as none:
        opened(alerts=[])
    assert none.value.field == "alert_ids"
    with pytest.raises(InvalidValue) as twice:
        opened(alerts=[*alerts(), CitedAlert(FIRST, "work_outside_scope", (1,))])
    assert twice.value.field == "alert_ids[2]"
    with pytest.raises(InvalidValue):
        opened(alerts=[CitedAlert(FIRST, "work_outside_scope", ())])
    with pytest.raises(InvalidValue):
        opened(alerts=[CitedAlert(FIRST, "work_outside_scope", (0,))])
    with pytest.raises(InvalidValue) as grounds:
        opened(grounds="  ")
    assert grounds.value.field == "grounds"
    investigation = opened()
    assert investigation.alerts[FIRST].evidence == (7, 12)  # sorted, once each


def test_subjects_are_contractors_or_staff() -> None:
    with pytest.raises(InvalidValue) as kind:
        opened(subject_kind="household")
    assert kind.value.field == "subject_kind"
    with pytest.raises(InvalidValue):
        opened(contractor_id=uuid.uuid4())  # a contractor is its own contractor
    staff = uuid.uuid4()
    investigation = opened(subject_kind="staff", subject_id=staff, contractor_id=None)
    assert investigation.subject_kind is SubjectKind.STAFF and investigation.contractor_id is None


def test_notes_and_findings_are_appended_and_verdicts_follow_the_latest() -> None:
    investigation = opened()
    investigation.add_note(text="asked the centre for its visit logs", provenance=BY_SUPERVISOR)
    investigation.add_note(text="logs received", provenance=ANOTHER_SUPERVISOR)
    judged(investigation, "confirmed", "dismissed")
    assert investigation.verdicts[SECOND].reason == "explained"
    investigation.record_findings(
        summary="the raise was for new households, not the poor score",
        verdicts=[VerdictInput(FIRST, "dismissed", "a data entry error")],
        provenance=BY_SUPERVISOR,
    )
    assert [n.text for n in investigation.notes] == [
        "asked the centre for its visit logs",
        "logs received",
    ]
    assert investigation.notes[1].by == "supervisor-2"
    assert len(investigation.findings) == 2
    assert investigation.verdicts[FIRST].verdict == "dismissed"
    assert investigation.confirmed_alerts() == []


def test_verdicts_name_cited_alerts_and_a_dismissal_says_why() -> None:
    investigation = opened()
    with pytest.raises(InvalidValue) as unknown:
        investigation.record_findings(
            summary="s",
            verdicts=[VerdictInput(uuid.uuid4(), "confirmed")],
            provenance=BY_SUPERVISOR,
        )
    assert unknown.value.field == "verdicts[0].alert_id"
    with pytest.raises(InvalidValue) as reason:
        investigation.record_findings(
            summary="s", verdicts=[VerdictInput(FIRST, "dismissed", " ")], provenance=BY_SUPERVISOR
        )
    assert reason.value.field == "verdicts[0].reason"
    with pytest.raises(InvalidValue) as verdict:
        investigation.record_findings(
            summary="s", verdicts=[VerdictInput(FIRST, "maybe")], provenance=BY_SUPERVISOR
        )
    assert verdict.value.field == "verdicts[0].verdict"
    with pytest.raises(InvalidValue) as twice:
        investigation.record_findings(
            summary="s",
            verdicts=[VerdictInput(FIRST, "confirmed"), VerdictInput(FIRST, "confirmed")],
            provenance=BY_SUPERVISOR,
        )
    assert twice.value.field == "verdicts[1].alert_id"
    with pytest.raises(NotPermitted):
        investigation.record_findings(summary="s", verdicts=[], provenance=BY_OFFICER)
    assert investigation.findings == []


def test_closing_needs_a_verdict_on_every_alert_and_a_consistent_outcome() -> None:
    investigation = opened()
    with pytest.raises(InvalidState):
        investigation.check_can_close("no_case_to_answer", with_violation=False)
    judged(investigation, "confirmed", "dismissed")
    with pytest.raises(InvalidState):  # an alert is confirmed
        investigation.close(outcome="no_case_to_answer", summary="s", provenance=BY_SUPERVISOR)
    with pytest.raises(InvalidValue) as outcome:
        investigation.close(outcome="warning", summary="s", provenance=BY_SUPERVISOR)
    assert outcome.value.field == "outcome"
    with pytest.raises(InvalidValue) as missing:
        investigation.close(outcome="violation", summary="s", provenance=BY_SUPERVISOR)
    assert missing.value.field == "violation"
    with pytest.raises(InvalidValue) as elsewhere:
        investigation.close(
            outcome="violation",
            summary="s",
            provenance=BY_SUPERVISOR,
            violation=violation(contractor_id=uuid.uuid4()),
        )
    assert elsewhere.value.field == "violation.contract_id"
    with pytest.raises(NotPermitted):
        investigation.close(
            outcome="violation", summary="s", provenance=BY_APPROVER, violation=violation()
        )
    assert investigation.is_open

    dismissed = judged(opened(), "dismissed", "dismissed")
    with pytest.raises(InvalidState):  # nothing confirmed: no violation to record
        dismissed.check_can_close("violation", with_violation=True)
    with pytest.raises(InvalidValue):
        dismissed.close(
            outcome="no_case_to_answer",
            summary="explained",
            provenance=BY_SUPERVISOR,
            violation=violation(),
        )
    dismissed.close(outcome="no_case_to_answer", summary="explained", provenance=BY_SUPERVISOR)
    assert dismissed.outcome is Outcome.NO_CASE_TO_ANSWER
    assert dismissed.closure is not None and dismissed.closure.violation_number is None


def test_a_violation_cites_the_confirmed_alerts_evidence_and_the_findings() -> None:
    investigation = judged(opened(), "confirmed", "dismissed")
    findings_version = investigation.findings[-1].version
    assert investigation.violation_evidence() == [
        EventAtPosition(7),
        EventAtPosition(12),
        EventOfAggregate(investigation.id, findings_version),
    ]
    recorded = violation(number=2)
    investigation.close(
        outcome="violation", summary="falsified", provenance=BY_SUPERVISOR, violation=recorded
    )
    assert investigation.outcome is Outcome.VIOLATION
    assert investigation.closure is not None
    assert investigation.closure.contract_id == recorded.contract_id
    assert investigation.closure.violation_number == 2
    assert investigation.closure.sanctions == (ViolationSanction(CONTRACT, 2),)


def test_government_staff_have_no_contract_to_record_a_violation_on() -> None:
    investigation = opened(subject_kind="staff", subject_id=uuid.uuid4(), contractor_id=None)
    judged(investigation, "confirmed", "confirmed")
    with pytest.raises(InvalidValue) as refused:
        investigation.close(
            outcome="violation", summary="s", provenance=BY_SUPERVISOR, violation=violation()
        )
    assert refused.value.field == "violation.contract_id"


def test_a_closed_investigation_takes_no_more_changes() -> None:
    investigation = judged(opened(), "dismissed", "dismissed")
    investigation.close(outcome="no_case_to_answer", summary="done", provenance=BY_SUPERVISOR)
    version = investigation.version
    with pytest.raises(InvalidState):
        investigation.add_note(text="one more thing", provenance=BY_SUPERVISOR)
    with pytest.raises(InvalidState):
        investigation.record_findings(summary="s", verdicts=[], provenance=BY_SUPERVISOR)
    with pytest.raises(InvalidState):
        investigation.close(outcome="no_case_to_answer", summary="again", provenance=BY_SUPERVISOR)
    assert investigation.version == version


def test_the_summary_shows_each_alert_with_its_verdict() -> None:
    investigation = judged(opened(), "confirmed", "dismissed")
    view = investigation.summary()
    assert view["status"] == "open" and view["outcome"] is None
    assert view["subject"] == {"kind": "contractor", "id": str(CONTRACTOR)}
    assert [(a["alert_id"], a["verdict"], a["verdict_reason"]) for a in view["alerts"]] == [
        (str(FIRST), "confirmed", None),
        (str(SECOND), "dismissed", "explained"),
    ]
