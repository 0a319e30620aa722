"""Supervision over HTTP: red flags, misconduct investigations, the contractor dossier, and
staff's declared interests.

A flag is a lead for a person to review, never a sanction: supervisors list the alerts
(疑点) in their scope, open an investigation (调查) citing some, record notes and findings with
a verdict per alert, and close it with an outcome; a violation and its penalty, termination
and ban are recorded on the contract and the contractor in the same save as the closure.
Who may do what, and which records are in whose scope, is decided in api/access.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from psycopg import Cursor

from api.access import (
    ScopedCounty,
    alert_scope,
    allow,
    check_alert,
    check_contract,
    check_division,
    check_investigation,
    check_record,
    check_supervised,
)
from api.auth import CurrentPrincipal, Principal
from api.deps import AppServices, By, ExpectedVersion, Ledger, ReadCursor, RuntimeDep
from api.etags import AlertsTag, answer
from api.requests.supervision import Closure, Findings, Interests, Note, OpenInvestigation
from api.routes.purchasing import staff_view
from domain.errors import InvalidValue, NotFound
from domain.investigation import CitedAlert, Investigation, SubjectKind, parse_subject_kind
from infra.history import aggregate_history, stored_history
from infra.ledger import ReliefLedger
from projections.dossier import alert_view, contractor_dossier, investigation_view
from projections.history import mask_text
from projections.red_flags.projection import rule_catalogue
from projections.red_flags.queries import alerts_by_id, investigations_citing, query_alerts

router = APIRouter()

RULE_NAMES = frozenset(entry["rule"] for entry in rule_catalogue())


# Alerts ------------------------------------------------------------------------------------------


@router.get("/alerts/rules", dependencies=[allow("alert.read")], tags=["supervision"])
def alert_rules() -> dict[str, Any]:
    """The rule catalogue: each rule's name, severity, the kind of subject it points at, and
    why its alerts deserve a look."""
    return {"items": rule_catalogue()}


@router.get("/alerts", dependencies=[allow("alert.read")], tags=["supervision"])
def list_alerts(
    cursor: ReadCursor,
    principal: CurrentPrincipal,
    etag: AlertsTag,
    county: ScopedCounty = None,
    contractor_id: UUID | None = None,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[
        Literal["open", "cleared"] | None, Query(description="the engine's own status")
    ] = None,
    review_status: Annotated[
        Literal["unreviewed", "under_review", "confirmed", "dismissed"] | None,
        Query(description="the reviewer's status, from investigations"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=100, description="next_page of the last")] = (
        None
    ),
) -> Response:
    """Alerts in your scope, newest first, keyset-paged (pass ``next_page`` as ``after``)."""
    if rule is not None and rule not in RULE_NAMES:
        raise InvalidValue(f"no rule named {rule!r}; see /alerts/rules", field="rule")
    scope, unplaced = alert_scope(principal)
    try:
        items, token = query_alerts(
            cursor,
            contractor_id=contractor_id,
            county=county,
            rule=rule,
            status=status,
            review_status=review_status,
            scope=scope,
            unplaced=unplaced,
            limit=limit,
            after=after,
        )
    except ValueError as error:
        raise InvalidValue(str(error), field="after") from None
    return answer({"items": [alert_view(a) for a in items], "next_page": token}, etag)


def _investigation_refs(
    ledger: ReliefLedger, principal: Principal, ids: list[UUID]
) -> list[dict[str, Any]]:
    """The investigations behind ids that the reader may see: number, subject, status."""
    refs = []
    for investigation_id in ids:
        try:
            investigation = ledger.get_investigation(investigation_id)
            check_investigation(ledger, principal, investigation)
        except NotFound:
            continue
        refs.append(
            {
                "investigation_id": str(investigation.id),
                "number": investigation.number,
                "subject": {
                    "kind": investigation.subject_kind.value,
                    "id": str(investigation.subject_id),
                },
                "status": "open" if investigation.is_open else "closed",
                "outcome": investigation.outcome.value if investigation.outcome else None,
            }
        )
    return refs


@router.get("/alerts/{alert_id}", dependencies=[allow("alert.read")], tags=["supervision"])
def get_alert(
    alert_id: UUID, cursor: ReadCursor, ledger: Ledger, principal: CurrentPrincipal
) -> dict[str, Any]:
    """One alert with its review and the investigations that cited it."""
    alert = alerts_by_id(cursor, [alert_id]).get(alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    check_alert(principal, alert)
    view = alert_view(alert)
    view["investigations"] = _investigation_refs(ledger, principal, alert["investigation_ids"])
    return view


# Investigations ----------------------------------------------------------------------------------


def _investigation_response(
    cursor: Cursor[Any], investigation: Investigation, response: Response
) -> dict[str, Any]:
    response.headers["ETag"] = f'"{investigation.version}"'
    return investigation_view(cursor, investigation)


def _cited_alerts(
    cursor: Cursor[Any], principal: Principal, alert_ids: list[UUID]
) -> list[CitedAlert]:
    """The alerts an opening cites, as the reader sees them now (each in the reader's scope)."""
    found = alerts_by_id(cursor, alert_ids)
    cited = []
    for n, alert_id in enumerate(alert_ids):
        alert = found.get(alert_id)
        try:
            if alert is None:
                raise NotFound(f"no alert with id {alert_id}")
            check_alert(principal, alert)
        except NotFound as missing:
            raise NotFound(missing.message, field=f"alert_ids[{n}]") from None
        cited.append(CitedAlert(alert_id, alert["rule"], tuple(alert["evidence"])))
    return cited


@router.post(
    "/investigations",
    dependencies=[allow("investigation.manage")],
    status_code=201,
    tags=["supervision"],
)
def open_investigation(
    body: OpenInvestigation,
    response: Response,
    cursor: ReadCursor,
    ledger: Ledger,
    services: AppServices,
    by: By,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Open an investigation of a contractor or staff member citing alerts in your scope."""
    kind = parse_subject_kind(body.subject_kind)
    try:
        subject: Any = (
            ledger.get_contractor(body.subject_id)
            if kind is SubjectKind.CONTRACTOR
            else ledger.get_staff(body.subject_id)
        )
        check_supervised(ledger, principal, subject)
    except NotFound as missing:
        raise NotFound(missing.message, field="subject_id") from None
    alerts = _cited_alerts(cursor, principal, body.alert_ids)
    investigation = services.supervision.open_investigation(body.command(by, alerts))
    response.headers["Location"] = f"/investigations/{investigation.id}"
    return _investigation_response(cursor, investigation, response)


@router.get(
    "/investigations/{investigation_id}",
    dependencies=[allow("investigation.read")],
    tags=["supervision"],
)
def get_investigation(
    investigation_id: UUID, response: Response, cursor: ReadCursor, ledger: Ledger
) -> dict[str, Any]:
    investigation = ledger.get_investigation(investigation_id)
    return _investigation_response(cursor, investigation, response)


@router.get(
    "/investigations/{investigation_id}/history",
    dependencies=[allow("investigation.read")],
    tags=["supervision"],
)
def investigation_history(
    investigation_id: UUID, runtime: RuntimeDep, ledger: Ledger
) -> dict[str, Any]:
    """Every event of the investigation with its global position, time and actor."""
    ledger.get_investigation(investigation_id)
    items = aggregate_history(runtime.pool, ledger.mapper, investigation_id)
    return {"items": mask_text(items)}


@router.post(
    "/investigations/{investigation_id}/notes",
    dependencies=[allow("investigation.manage")],
    tags=["supervision"],
)
def add_note(
    investigation_id: UUID,
    body: Note,
    response: Response,
    cursor: ReadCursor,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> dict[str, Any]:
    command = body.command(investigation_id, by, version)
    investigation = services.supervision.add_investigation_note(command)
    return _investigation_response(cursor, investigation, response)


@router.post(
    "/investigations/{investigation_id}/findings",
    dependencies=[allow("investigation.manage")],
    tags=["supervision"],
)
def record_findings(
    investigation_id: UUID,
    body: Findings,
    response: Response,
    cursor: ReadCursor,
    services: AppServices,
    by: By,
    version: ExpectedVersion,
) -> dict[str, Any]:
    """Findings, with a verdict on cited alerts: confirmed, or dismissed with a reason."""
    command = body.command(investigation_id, by, version)
    investigation = services.supervision.record_findings(command)
    return _investigation_response(cursor, investigation, response)


@router.post(
    "/investigations/{investigation_id}/closure",
    dependencies=[allow("investigation.manage")],
    tags=["supervision"],
)
def close_investigation(
    investigation_id: UUID,
    body: Closure,
    response: Response,
    cursor: ReadCursor,
    ledger: Ledger,
    services: AppServices,
    by: By,
    principal: CurrentPrincipal,
    version: ExpectedVersion,
) -> dict[str, Any]:
    """Close once: ``no_case_to_answer``, or ``violation`` recorded on a contract of the
    subject's contractor with its optional penalty, termination and ban, all in one save."""
    if body.violation is not None:
        # The records the closure sanctions must be in the caller's scope.
        try:
            check_record(ledger, principal, ledger.get_contract(body.violation.contract_id))
        except NotFound as missing:
            raise NotFound(missing.message, field="violation.contract_id") from None
        if body.violation.ban is not None:
            unit = body.violation.ban.deciding_unit
            check_division(principal, unit, field="violation.ban.deciding_unit")
    investigation = services.supervision.close_investigation(
        body.command(investigation_id, by, version)
    )
    return _investigation_response(cursor, investigation, response)


# The contractor dossier --------------------------------------------------------------------------


@router.get(
    "/contractors/{contractor_id}/dossier",
    dependencies=[allow("contractor.dossier")],
    tags=["supervision"],
)
def dossier(
    contractor_id: UUID,
    runtime: RuntimeDep,
    cursor: ReadCursor,
    ledger: Ledger,
    services: AppServices,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=5000, description="timeline items, newest kept")] = 1000,
) -> dict[str, Any]:
    """Everything supervision holds on a contractor, on one timeline in log order: the
    register entry, contracts and their histories, evaluations, invoices, services
    recorded under its contracts, alerts, investigations, violations, penalties, terminations
    and bans. Only contracts, services and alerts inside your scope are shown."""
    contractor = ledger.get_contractor(contractor_id)
    contracts = []
    for contract_id in contractor.contracts:
        contract = ledger.get_contract(contract_id)
        try:
            check_contract(ledger, principal, contract)
        except NotFound:
            continue
        contracts.append(contract)
    investigations = []
    candidates = [
        i.id for i in services.supervision.investigations_of("contractor", contractor.id)
    ] + investigations_citing(cursor, contractor.id)
    for investigation_id in dict.fromkeys(candidates):
        investigation = ledger.get_investigation(investigation_id)
        try:
            check_investigation(ledger, principal, investigation)
        except NotFound:
            continue
        investigations.append(investigation)
    scope, unplaced = alert_scope(principal)
    return contractor_dossier(
        cursor,
        lambda aggregate_id: stored_history(runtime.pool, ledger.mapper, aggregate_id),
        contractor=contractor,
        contracts=contracts,
        investigations=investigations,
        today=services.clock.today(),
        scope=scope,
        unplaced=unplaced,
        limit=limit,
    )


# Declared interests ------------------------------------------------------------------------------


@router.post("/staff/{staff_id}/interests", dependencies=[allow("staff.interests")], tags=["staff"])
def declare_interests(
    staff_id: UUID, body: Interests, response: Response, services: AppServices, by: By
) -> dict[str, Any]:
    """Declare (利益冲突申报) the staff member's own resident ID and their relatives': kept only
    as blind indexes, for the conflict-of-interest red flag. Replaces any earlier declaration.
    The staff office declares for anyone in its scope; others for themselves only."""
    staff = services.supervision.declare_interests(body.command(staff_id, by))
    view = staff_view(services, staff, response)
    view["declared_relatives"] = len(staff.relatives)
    return view
