"""Households, people and relief cases over HTTP."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.access import allow, check_division, check_record, check_sees_full_ids
from api.auth import CurrentPrincipal
from api.deps import AppServices, By, ExpectedVersion, Ledger, RuntimeDep
from api.names import named
from api.read_audit import CaseRead, CaseReader, stated_purpose
from api.requests.cases import (
    AddMember,
    Approval,
    Assign,
    Closure,
    Correction,
    Investigation,
    MoveOut,
    Payment,
    ReceiveApplication,
    RecommendationBody,
    RecordDeath,
    RegisterHousehold,
    Rejection,
    Review,
    Service,
    WithReason,
)
from domain.case import ReliefCase
from domain.errors import NotFound
from domain.household import Household
from infra.database import LoopReads
from infra.history import aggregate_history
from infra.ledger import ByVersion, ReliefLedger
from infra.read_audit import record_read

router = APIRouter()


def case_view(case: ReliefCase, response: Response) -> Response:
    return record_answer(named(case.summary()), case.version, response)


def record_answer(content: dict[str, Any], version: int, response: Response) -> Response:
    """A record's answer encoded by orjson, not by FastAPI's validation and encoding of a
    returned dict (a tenth of a command's CPU), with its version as ETag and the status and
    headers the route set on ``response`` (FastAPI passes a returned response through as it
    is, the route's ``status_code`` included: a route creating a record sets 201 itself)."""
    answer = case_json(content, version)
    answer.status_code = response.status_code or 200
    for name, value in response.headers.items():
        answer.headers[name] = value
    return answer


def case_summary(request: Request, case: ReliefCase) -> dict[str, Any]:
    """``case.summary()``, kept per process by (id, version) (``app.state.case_summaries``):
    a version's summary never changes, and a long case's takes longer to build than to load.
    Shared: callers copy it before adding to it."""
    summaries: ByVersion | None = getattr(request.app.state, "case_summaries", None)
    if summaries is None:
        return case.summary()
    key = (case.id, case.version)
    summary: dict[str, Any] | None = summaries.get(key)
    if summary is None:
        summary = case.summary()
        summaries.put(key, summary)
    return summary


def case_json(content: dict[str, Any], etag: int | None = None) -> Response:
    """A case answer encoded by orjson (FastAPI's generic encoding of a long case took
    several times longer), with the case's version as ETag when it is the newest."""
    headers = {"ETag": f'"{etag}"'} if etag is not None else None
    return Response(orjson.dumps(content), media_type="application/json", headers=headers)


def household_view(household: Household, response: Response) -> Response:
    return record_answer(named(household.summary()), household.version, response)


# Households and people -------------------------------------------------------------------------


@router.post(
    "/households",
    dependencies=[allow("household.register")],
    status_code=201,
    tags=["households"],
    response_model=dict[str, Any],
)
def register_household(
    body: RegisterHousehold,
    response: Response,
    services: AppServices,
    by: By,
    principal: CurrentPrincipal,
) -> Response:
    check_division(principal, body.registered_division, field="registered_division")
    household = services.cases.register_household(body.command(by))
    response.status_code = 201
    response.headers["Location"] = f"/households/{household.id}"
    return household_view(household, response)


@router.get(
    "/households/{household_id}",
    dependencies=[allow("household.read")],
    tags=["households"],
    response_model=dict[str, Any],
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
) -> Response:
    """The household with its members; ID numbers masked unless ``reveal`` is asked for by a
    role whose work needs them, with a stated purpose, and the read is recorded."""
    household = ledger.get_household(household_id)
    if not reveal:
        return household_view(household, response)
    check_sees_full_ids(principal)
    record_read(
        runtime.pool, household_id, principal.actor, stated_purpose(x_purpose), request.url.path
    )
    response.headers["Cache-Control"] = "no-store"
    return record_answer(named(household.summary(masked=False)), household.version, response)


@router.post(
    "/households/{household_id}/members",
    dependencies=[allow("household.change")],
    tags=["households"],
    response_model=dict[str, Any],
)
def add_member(
    household_id: UUID, body: AddMember, response: Response, services: AppServices, by: By
) -> Response:
    household = services.cases.add_household_member(body.command(household_id, by))
    return household_view(household, response)


@router.post(
    "/households/{household_id}/move-outs",
    dependencies=[allow("household.change")],
    tags=["households"],
    response_model=dict[str, Any],
)
def move_out(
    household_id: UUID, body: MoveOut, response: Response, services: AppServices, by: By
) -> Response:
    household = services.cases.move_out_member(body.command(household_id, by))
    return household_view(household, response)


@router.post("/deaths", dependencies=[allow("death.record")], tags=["households"])
def record_death(
    body: RecordDeath, ledger: Ledger, services: AppServices, by: By, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Record a person's death, once; every active case of theirs learns of it."""
    person = services.cases.find_person(body.resident_id)
    if person is None or person.household_id is None:
        raise NotFound("no person with that resident ID number is known", field="resident_id")
    check_record(ledger, principal, ledger.get_household(person.household_id))
    return services.cases.record_death(body.command(by)).summary()


# Cases -----------------------------------------------------------------------------------------


@router.post(
    "/cases",
    dependencies=[allow("case.receive")],
    status_code=201,
    tags=["cases"],
    response_model=dict[str, Any],
)
def receive_application(
    body: ReceiveApplication,
    response: Response,
    services: AppServices,
    by: By,
    principal: CurrentPrincipal,
) -> Response:
    # The one-door window takes applications from anywhere (cross-region); the window itself
    # must be the clerk's.
    check_division(principal, body.window_division, field="window_division")
    case = services.cases.receive_application(body.command(by))
    response.status_code = 201
    response.headers["Location"] = f"/cases/{case.id}"
    return case_view(case, response)


@router.get(
    "/cases/{case_id}",
    dependencies=[allow("case.read")],
    tags=["cases"],
    response_model=dict[str, Any],
)
async def get_case(case_id: UUID, request: Request, reader: CaseRead) -> Response:
    ledger: ReliefLedger = request.app.state.runtime.ledger  # no dependency: fewer to resolve
    # Loaded by the access check for this request (which then had no cached version to check):
    # answered on the event loop, no I/O; the read record is written after the route.
    case = ledger.loaded(ReliefCase, case_id)
    if case is None:
        # One statement sent from the event loop: the events newer than the cached version
        # and the read record (committed when they arrive); on a worker thread if not cached.
        loop_reads: LoopReads = request.app.state.loop_reads
        if loop_reads.serves():
            case = await ledger.read_latest(ReliefCase, case_id, reader, loop_reads.fetch)
        if case is None:
            case = await run_in_threadpool(ledger.get, ReliefCase, case_id, recording=reader)
    return case_json(named(dict(case_summary(request, case))), case.version)


@router.get("/cases/{case_id}/history", dependencies=[allow("case.read")], tags=["cases"])
def case_history(
    case_id: UUID, ledger: Ledger, runtime: RuntimeDep, reader: CaseReader
) -> dict[str, Any]:
    ledger.get_case(case_id)  # 404 unless it is a case
    return {"items": aggregate_history(runtime.pool, ledger.mapper, case_id)}


@router.post(
    "/cases/{case_id}/assignment",
    dependencies=[allow("case.assign")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def assign(
    case_id: UUID,
    body: Assign,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    return case_view(services.cases.assign_case(body.command(case_id, by, version)), response)


@router.post(
    "/cases/{case_id}/investigation",
    dependencies=[allow("case.investigate")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def investigate(
    case_id: UUID,
    body: Investigation,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    case = services.cases.investigate_case(body.command(case_id, by, version))
    return case_view(case, response)


@router.post(
    "/cases/{case_id}/recommendation",
    dependencies=[allow("case.investigate")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def recommend(
    case_id: UUID,
    body: RecommendationBody,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    case = services.cases.recommend_case(body.command(case_id, by, version))
    return case_view(case, response)


@router.post(
    "/cases/{case_id}/approval",
    dependencies=[allow("case.decide")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def approve(
    case_id: UUID,
    body: Approval,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    return case_view(services.cases.approve_case(body.command(case_id, by, version)), response)


@router.post(
    "/cases/{case_id}/rejection",
    dependencies=[allow("case.decide")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def reject(
    case_id: UUID,
    body: Rejection,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    return case_view(services.cases.reject_case(body.command(case_id, by, version)), response)


@router.post(
    "/cases/{case_id}/payments",
    dependencies=[allow("case.pay")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def pay(
    case_id: UUID,
    body: Payment,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    return case_view(services.cases.record_payment(body.command(case_id, by, version)), response)


@router.post(
    "/cases/{case_id}/services",
    dependencies=[allow("case.serve")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def serve(
    case_id: UUID,
    body: Service,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    return case_view(services.cases.record_service(body.command(case_id, by, version)), response)


@router.post(
    "/cases/{case_id}/reviews",
    dependencies=[allow("case.manage")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def review(
    case_id: UUID,
    body: Review,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    return case_view(services.cases.review_case(body.command(case_id, by, version)), response)


@router.post(
    "/cases/{case_id}/suspension",
    dependencies=[allow("case.manage")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def suspend(
    case_id: UUID,
    body: WithReason,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    case = services.cases.suspend_case(body.suspension(case_id, by, version))
    return case_view(case, response)


@router.post(
    "/cases/{case_id}/resumption",
    dependencies=[allow("case.manage")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def resume(
    case_id: UUID,
    body: WithReason,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    case = services.cases.resume_case(body.resumption(case_id, by, version))
    return case_view(case, response)


@router.post(
    "/cases/{case_id}/closure",
    dependencies=[allow("case.manage")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def close(
    case_id: UUID,
    body: Closure,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    return case_view(services.cases.close_case(body.command(case_id, by, version)), response)


@router.post(
    "/cases/{case_id}/corrections",
    dependencies=[allow("case.manage")],
    tags=["cases"],
    response_model=dict[str, Any],
)
def correct(
    case_id: UUID,
    body: Correction,
    response: Response,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> Response:
    case = services.cases.correct_case_record(body.command(case_id, by, version))
    return case_view(case, response)
