"""Households, people and relief cases over HTTP."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import Field

from api.access import allow, check_division, check_record, check_sees_full_ids
from api.auth import CurrentPrincipal
from api.deps import (
    Amount,
    By,
    IfMatch,
    IsoDate,
    IsoDateTime,
    JsonBool,
    JsonInt,
    Ledger,
    RuntimeDep,
    StrictModel,
    parse_if_match,
    with_reason,
)
from api.read_audit import CaseReader, stated_purpose
from domain.case import HomeVisit, MeansTest, ReliefCase
from domain.errors import NotFound
from domain.household import Household, MemberInput
from infra.history import aggregate_history
from infra.read_audit import record_read

router = APIRouter()

Code = Annotated[str, Field(min_length=1, max_length=12)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Reason = Annotated[str | None, Field(default=None, max_length=2000)]
ResidentNumber = Annotated[str, Field(min_length=1, max_length=18)]


def case_view(case: ReliefCase, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{case.version}"'
    return case.summary()


def household_view(household: Household, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{household.version}"'
    return household.summary()


# Households and people -------------------------------------------------------------------------


class MemberBody(StrictModel):
    resident_id: ResidentNumber
    name: Annotated[str, Field(min_length=1, max_length=100)]
    relation: Annotated[str, Field(max_length=20)]

    def to_input(self) -> MemberInput:
        return MemberInput(self.resident_id, self.name, self.relation)


class RegisterHousehold(StrictModel):
    registered_division: Code
    residence_division: Code
    members: Annotated[list[MemberBody], Field(min_length=1, max_length=50)]
    reason: Reason = None


class AddMember(MemberBody):
    by_birth: JsonBool = False
    reason: Reason = None


class MoveOut(StrictModel):
    resident_id: ResidentNumber
    on: IsoDate
    reason: Reason = None


class RecordDeath(StrictModel):
    resident_id: ResidentNumber
    date_of_death: IsoDate
    reason: Reason = None


@router.post(
    "/households", dependencies=[allow("household.register")], status_code=201, tags=["households"]
)
def register_household(
    body: RegisterHousehold,
    response: Response,
    ledger: Ledger,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    check_division(principal, body.registered_division, field="registered_division")
    household = ledger.register_household(
        registered_division=body.registered_division,
        residence_division=body.residence_division,
        members=[m.to_input() for m in body.members],
        provenance=with_reason(by, body.reason),
    )
    response.headers["Location"] = f"/households/{household.id}"
    return household_view(household, response)


@router.get(
    "/households/{household_id}", dependencies=[allow("household.read")], tags=["households"]
)
def get_household(
    household_id: UUID,
    request: Request,
    response: Response,
    ledger: Ledger,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    reveal: Annotated[
        bool, Query(description="full ID numbers, for roles whose work needs them")
    ] = False,
    x_purpose: Annotated[str | None, Header(max_length=500)] = None,
) -> dict[str, Any]:
    """The household with its members; ID numbers masked unless ``reveal`` is asked for by a
    role whose work needs them, with a stated purpose, and the read is recorded."""
    household = ledger.get_household(household_id)
    if not reveal:
        return household_view(household, response)
    check_sees_full_ids(principal)
    record_read(
        runtime.pool, household_id, principal.actor, stated_purpose(x_purpose), request.url.path
    )
    response.headers["ETag"] = f'"{household.version}"'
    response.headers["Cache-Control"] = "no-store"
    return household.summary(masked=False)


@router.post(
    "/households/{household_id}/members",
    dependencies=[allow("household.change")],
    tags=["households"],
)
def add_member(
    household_id: UUID, body: AddMember, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    household = ledger.add_household_member(
        household_id,
        member=body.to_input(),
        by_birth=body.by_birth,
        provenance=with_reason(by, body.reason),
    )
    return household_view(household, response)


@router.post(
    "/households/{household_id}/move-outs",
    dependencies=[allow("household.change")],
    tags=["households"],
)
def move_out(
    household_id: UUID, body: MoveOut, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    household = ledger.move_out_member(
        household_id,
        resident_id=body.resident_id,
        on=body.on,
        provenance=with_reason(by, body.reason),
    )
    return household_view(household, response)


@router.post("/deaths", dependencies=[allow("death.record")], tags=["households"])
def record_death(
    body: RecordDeath, ledger: Ledger, by: By, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Record a person's death, once; every active case of theirs learns of it."""
    person = ledger.find_person(body.resident_id)
    if person is None or person.household_id is None:
        raise NotFound("no person with that resident ID number is known", field="resident_id")
    check_record(ledger, principal, ledger.get_household(person.household_id))
    person = ledger.record_death(
        resident_id=body.resident_id, on=body.date_of_death, provenance=with_reason(by, body.reason)
    )
    return person.summary()


# Cases -----------------------------------------------------------------------------------------


class ReceiveApplication(StrictModel):
    household_id: UUID
    applicant_id: ResidentNumber
    programme: Annotated[str, Field(max_length=20, description="dibao, tekun or temporary")]
    window_division: Annotated[Code, Field(description="township or village of the window")]
    reason: Reason = None


class Assign(StrictModel):
    staff_id: UUID
    reason: Reason = None


class IncomeItem(StrictModel):
    source: Annotated[str, Field(min_length=1, max_length=100)]
    monthly_amount: Amount


class Asset(StrictModel):
    kind: Annotated[str, Field(min_length=1, max_length=100)]
    value: Amount


class HomeVisitBody(StrictModel):
    visited_at: IsoDateTime
    place: Code
    visitor_id: Annotated[str, Field(min_length=1, max_length=100)]


class Investigation(StrictModel):
    income_items: Annotated[list[IncomeItem], Field(max_length=100)]
    assets: Annotated[list[Asset], Field(max_length=100)]
    household_size: JsonInt = Field(ge=1, le=50)
    home_visit: HomeVisitBody
    contract_id: UUID | None = None
    reason: Reason = None


class RecommendationBody(StrictModel):
    recommendation: Annotated[str, Field(max_length=20)]
    reasons: Text
    monthly_amount: Amount | None = None
    contract_id: UUID | None = None


class Approval(StrictModel):
    monthly_amount: Amount
    start_date: IsoDate
    reasons: Text


class Rejection(StrictModel):
    reasons: Text


class Payment(StrictModel):
    period: Annotated[str, Field(min_length=7, max_length=7, description="YYYY-MM")]
    amount: Amount
    reason: Reason = None


class Service(StrictModel):
    work_item: Annotated[str, Field(max_length=60)]
    contract_id: UUID | None = None
    start: IsoDateTime
    end: IsoDateTime
    place: Code
    reason: Reason = None


class Review(StrictModel):
    outcome: Annotated[str, Field(max_length=20)]
    notes: Text
    new_monthly_amount: Amount | None = None
    effective_from: IsoDate | None = None


class WithReason(StrictModel):
    reason: Text


class Closure(StrictModel):
    reason_code: Annotated[
        str,
        Field(
            max_length=40,
            description=("income_above_line, death, moved_away, voluntary or fraud_found"),
        ),
    ]
    reason: Reason = None


class Correction(StrictModel):
    corrects_version: JsonInt = Field(ge=1)
    changes: dict[str, Any]
    reason: Text


@router.post("/cases", dependencies=[allow("case.receive")], status_code=201, tags=["cases"])
def receive_application(
    body: ReceiveApplication,
    response: Response,
    ledger: Ledger,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    # The one-door window takes applications from anywhere (cross-region); the window itself
    # must be the clerk's.
    check_division(principal, body.window_division, field="window_division")
    case = ledger.receive_application(
        household_id=body.household_id,
        applicant_id=body.applicant_id,
        programme=body.programme,
        window_division=body.window_division,
        provenance=with_reason(by, body.reason),
    )
    response.headers["Location"] = f"/cases/{case.id}"
    return case_view(case, response)


@router.get("/cases/{case_id}", dependencies=[allow("case.read")], tags=["cases"])
def get_case(
    case_id: UUID, response: Response, ledger: Ledger, reader: CaseReader
) -> dict[str, Any]:
    return case_view(ledger.get_case(case_id), response)


@router.get("/cases/{case_id}/history", dependencies=[allow("case.read")], tags=["cases"])
def case_history(
    case_id: UUID, ledger: Ledger, runtime: RuntimeDep, reader: CaseReader
) -> dict[str, Any]:
    ledger.get_case(case_id)  # 404 unless it is a case
    return {"items": aggregate_history(runtime.pool, ledger.mapper, case_id)}


@router.post("/cases/{case_id}/assignment", dependencies=[allow("case.assign")], tags=["cases"])
def assign(
    case_id: UUID,
    body: Assign,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.assign_case(
        case_id,
        staff_id=body.staff_id,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post(
    "/cases/{case_id}/investigation", dependencies=[allow("case.investigate")], tags=["cases"]
)
def investigate(
    case_id: UUID,
    body: Investigation,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    means_test = MeansTest(
        income_items=[i.model_dump() for i in body.income_items],
        assets=[a.model_dump() for a in body.assets],
        household_size=body.household_size,
        home_visit=HomeVisit(
            body.home_visit.visited_at, body.home_visit.place, body.home_visit.visitor_id
        ),
    )
    case = ledger.investigate_case(
        case_id,
        means_test=means_test,
        contract_id=body.contract_id,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post(
    "/cases/{case_id}/recommendation", dependencies=[allow("case.investigate")], tags=["cases"]
)
def recommend(
    case_id: UUID,
    body: RecommendationBody,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.recommend_case(
        case_id,
        recommendation=body.recommendation,
        reasons=body.reasons,
        monthly_amount=body.monthly_amount,
        contract_id=body.contract_id,
        provenance=with_reason(by, body.reasons),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/approval", dependencies=[allow("case.decide")], tags=["cases"])
def approve(
    case_id: UUID,
    body: Approval,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.approve_case(
        case_id,
        monthly_amount=body.monthly_amount,
        start_date=body.start_date,
        reasons=body.reasons,
        provenance=with_reason(by, body.reasons),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/rejection", dependencies=[allow("case.decide")], tags=["cases"])
def reject(
    case_id: UUID,
    body: Rejection,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.reject_case(
        case_id,
        reasons=body.reasons,
        provenance=with_reason(by, body.reasons),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/payments", dependencies=[allow("case.pay")], tags=["cases"])
def pay(
    case_id: UUID,
    body: Payment,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.record_payment(
        case_id,
        period=body.period,
        amount=body.amount,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/services", dependencies=[allow("case.serve")], tags=["cases"])
def serve(
    case_id: UUID,
    body: Service,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.record_service(
        case_id,
        work_item=body.work_item,
        contract_id=body.contract_id,
        start=body.start,
        end=body.end,
        place=body.place,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/reviews", dependencies=[allow("case.manage")], tags=["cases"])
def review(
    case_id: UUID,
    body: Review,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.review_case(
        case_id,
        outcome=body.outcome,
        notes=body.notes,
        new_monthly_amount=body.new_monthly_amount,
        effective_from=body.effective_from,
        provenance=with_reason(by, body.notes),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/suspension", dependencies=[allow("case.manage")], tags=["cases"])
def suspend(
    case_id: UUID,
    body: WithReason,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.suspend_case(
        case_id,
        reason=body.reason,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/resumption", dependencies=[allow("case.manage")], tags=["cases"])
def resume(
    case_id: UUID,
    body: WithReason,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.resume_case(
        case_id,
        reason=body.reason,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/closure", dependencies=[allow("case.manage")], tags=["cases"])
def close(
    case_id: UUID,
    body: Closure,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.close_case(
        case_id,
        reason_code=body.reason_code,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)


@router.post("/cases/{case_id}/corrections", dependencies=[allow("case.manage")], tags=["cases"])
def correct(
    case_id: UUID,
    body: Correction,
    response: Response,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    case = ledger.correct_case_record(
        case_id,
        corrects_version=body.corrects_version,
        changes=body.changes,
        reason=body.reason,
        provenance=with_reason(by, body.reason),
        expected_version=parse_if_match(if_match),
    )
    return case_view(case, response)
