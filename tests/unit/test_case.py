import pytest

from domain.case import CaseStatus, ClosureReason, Programme, ReliefCase
from domain.errors import CaseAlreadyClosed, InvalidIdentifier, InvalidValue
from domain.provenance import Actor, Provenance, Role
from tests.factories import BY_CLERK, resident_id, village


def open_case(**overrides: str) -> ReliefCase:
    fields = {
        "programme": "dibao",
        "applicant_id": resident_id(),
        "registered_division": village(),
    }
    fields.update(overrides)
    return ReliefCase.open(provenance=BY_CLERK, **fields)


def test_opening_records_one_event_with_the_county_of_the_hukou_village() -> None:
    case = open_case(registered_division="440305002003")
    [opened] = case.collect_events()
    assert isinstance(opened, ReliefCase.Opened)
    assert case.status is CaseStatus.OPEN
    assert case.programme is Programme.DIBAO
    assert opened.county == "440305"
    assert case.county.code == "440305"


def test_every_event_carries_who_why_when_and_the_correlation_id() -> None:
    case = open_case()
    case.close(reason_code="voluntary", provenance=BY_CLERK)
    for event in case.collect_events():
        assert event.provenance.actor.id == "clerk-1"
        assert event.provenance.actor.role is Role.INTAKE_CLERK
        assert event.provenance.actor.organisation == "440103"
        assert event.provenance.reason == "walk-in application"
        assert event.provenance.correlation_id == "corr-1"
        assert event.timestamp.tzinfo is not None


@pytest.mark.parametrize("programme", ["dibao", "tekun", "temporary"])
def test_every_programme_can_be_opened(programme: str) -> None:
    assert open_case(programme=programme).programme.value == programme


def test_an_unknown_programme_is_refused() -> None:
    with pytest.raises(InvalidValue) as refused:
        open_case(programme="pension")
    assert refused.value.field == "programme"


def test_an_invalid_applicant_id_is_refused() -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        open_case(applicant_id="440103198503071235")
    assert refused.value.field == "applicant_id"
    assert refused.value.fault == "check-character"


def test_the_registered_division_must_be_a_village() -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        open_case(registered_division="440103001")
    assert refused.value.field == "registered_division"


def test_closing_records_the_reason() -> None:
    case = open_case()
    case.close(reason_code="death", provenance=BY_CLERK)
    assert case.status is CaseStatus.CLOSED
    assert case.closure_reason is ClosureReason.DEATH
    assert case.closed_at == case.modified_on
    assert [type(e).__name__ for e in case.collect_events()] == ["Opened", "Closed"]


def test_a_closed_case_cannot_be_closed_again() -> None:
    case = open_case()
    case.close(reason_code="death", provenance=BY_CLERK)
    with pytest.raises(CaseAlreadyClosed):
        case.close(reason_code="voluntary", provenance=BY_CLERK)
    assert case.version == 2


def test_an_unknown_closure_reason_is_refused_and_nothing_is_recorded() -> None:
    case = open_case()
    case.collect_events()
    with pytest.raises(InvalidValue) as refused:
        case.close(reason_code="bored", provenance=BY_CLERK)
    assert refused.value.field == "reason_code"
    assert case.collect_events() == []
    assert case.status is CaseStatus.OPEN


def test_replaying_the_events_rebuilds_the_same_case() -> None:
    case = open_case()
    case.close(reason_code="moved_away", provenance=BY_CLERK)
    events = case.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert replayed.summary() == case.summary()


def test_provenance_refuses_an_empty_actor_and_overlong_text() -> None:
    with pytest.raises(InvalidValue):
        Actor(id=" ", role=Role.APPROVER, organisation="440103")
    with pytest.raises(InvalidValue):
        Actor(id="a", role=Role.APPROVER, organisation="")
    actor = Actor(id="a", role=Role.APPROVER, organisation="440103")
    with pytest.raises(InvalidValue):
        Provenance(actor=actor, reason="x" * 2001)
    with pytest.raises(InvalidValue):
        Provenance(actor=actor, correlation_id="")
    assert Provenance.from_dict(BY_CLERK.to_dict()) == BY_CLERK
