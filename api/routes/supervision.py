"""Supervision over HTTP: red flags, misconduct investigations, the contractor dossier, and
staff's declared interests.

A flag is a lead for a person to review, never a sanction: supervisors list the alerts
(疑点) in their scope, open an investigation (调查) citing some, record notes and findings with
a verdict per alert, and close it with an outcome; a violation and its penalty, termination
and ban are recorded on the contract and the contractor in the same save as the closure.
Who may do what, and which records are in whose scope, is decided in api/access.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import Field

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
from api.deps import (
    Amount,
    By,
    IfMatch,
    IsoDate,
    IsoDateTime,
    Ledger,
    RuntimeDep,
    StrictModel,
    parse_if_match,
    with_reason,
)
from api.routes.purchasing import staff_view
from domain.errors import InvalidValue, NotFound
from domain.identifiers import mask_resident_id
from domain.investigation import (
    BanOrder,
    CitedAlert,
    Investigation,
    PenaltyOrder,
    SubjectKind,
    TerminationOrder,
    VerdictInput,
    ViolationOrder,
    parse_subject_kind,
)
from infra.history import aggregate_history, jsonable
from infra.ledger import ReliefLedger
from infra.runtime import Runtime
from projections.red_flags.engine import local_time
from projections.red_flags.projection import rule_catalogue
from projections.red_flags.queries import (
    alerts_by_id,
    contractor_services,
    investigations_citing,
    query_alerts,
)

router = APIRouter()

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Code = Annotated[str, Field(min_length=1, max_length=12)]
Word = Annotated[str, Field(min_length=1, max_length=40)]
Reason = Annotated[str | None, Field(default=None, max_length=2000)]
ResidentNumber = Annotated[str, Field(min_length=1, max_length=18)]

RULE_NAMES = frozenset(entry["rule"] for entry in rule_catalogue())

# Personal data in free text ----------------------------------------------------------------------

#: An 18-character resident ID number typed into free text (notes, findings, reasons): six
#: digits of address, a birth date YYYYMMDD, three of sequence, the check character.
_RESIDENT_ID_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])[0-9]{6}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)


def mask_text(value: Any) -> Any:
    """Free text as shown: anything shaped like a resident ID number in it masked
    (4401**********1234), whether or not its check character is right."""
    if isinstance(value, str):
        return _RESIDENT_ID_IN_TEXT.sub(lambda m: mask_resident_id(m.group(0)), value)
    if isinstance(value, dict):
        return {k: mask_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_text(v) for v in value]
    return value


# Alerts ------------------------------------------------------------------------------------------


def _alert_view(alert: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = jsonable(dict(alert))
    view["reason"] = mask_text(view["reason"])
    view["review_reason"] = mask_text(view["review_reason"])
    return view


@router.get("/alerts/rules", dependencies=[allow("alert.read")], tags=["supervision"])
def alert_rules() -> dict[str, Any]:
    """The rule catalogue: each rule's name, severity, the kind of subject it points at, and
    why its alerts deserve a look."""
    return {"items": rule_catalogue()}


@router.get("/alerts", dependencies=[allow("alert.read")], tags=["supervision"])
def list_alerts(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
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
) -> dict[str, Any]:
    """Alerts in your scope, newest first, keyset-paged (pass ``next_page`` as ``after``)."""
    if rule is not None and rule not in RULE_NAMES:
        raise InvalidValue(f"no rule named {rule!r}; see /alerts/rules", field="rule")
    scope, unplaced = alert_scope(principal)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
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
    return {"items": [_alert_view(a) for a in items], "next_page": token}


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
    alert_id: UUID, runtime: RuntimeDep, ledger: Ledger, principal: CurrentPrincipal
) -> dict[str, Any]:
    """One alert with its review and the investigations that cited it."""
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        alert = alerts_by_id(cursor, [alert_id]).get(alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    check_alert(principal, alert)
    view = _alert_view(alert)
    view["investigations"] = _investigation_refs(ledger, principal, alert["investigation_ids"])
    return view


# Investigations ----------------------------------------------------------------------------------


class OpenInvestigation(StrictModel):
    subject_kind: Annotated[str, Field(max_length=20, description="contractor or staff")]
    subject_id: UUID
    alert_ids: Annotated[list[UUID], Field(min_length=1, max_length=100)]
    grounds: Annotated[Text, Field(description="why the investigation is opened (立案理由)")]


class Note(StrictModel):
    text: Text


class VerdictBody(StrictModel):
    alert_id: UUID
    verdict: Annotated[str, Field(max_length=20, description="confirmed or dismissed")]
    reason: Reason = None


class Findings(StrictModel):
    summary: Annotated[Text, Field(description="the facts established (查明事实)")]
    verdicts: Annotated[list[VerdictBody], Field(max_length=100, default_factory=list)]


class PenaltyPart(StrictModel):
    kind: Annotated[Word, Field(description="warning, rectification_order, fine, ...")]
    basis: Text
    amount: Amount | None = None


class TerminationPart(StrictModel):
    effective_at: IsoDateTime
    basis: Annotated[Word, Field(description="law or contract")]
    reason: Text


class BanPart(StrictModel):
    start: IsoDate
    end: IsoDate
    reason: Text
    deciding_unit: Code


class ViolationPart(StrictModel):
    contract_id: UUID
    kind: Annotated[Word, Field(description="breach or falsification")]
    severity: Annotated[Word, Field(description="minor, serious or grave")]
    description: Text
    penalty: PenaltyPart | None = None
    termination: TerminationPart | None = None
    ban: BanPart | None = None


class Closure(StrictModel):
    outcome: Annotated[str, Field(max_length=40, description="no_case_to_answer or violation")]
    summary: Text
    violation: ViolationPart | None = None


def investigation_view(
    runtime: Runtime, investigation: Investigation, response: Response | None = None
) -> dict[str, Any]:
    """The investigation, with the cited alerts' current state (engine and review status)."""
    if response is not None:
        response.headers["ETag"] = f'"{investigation.version}"'
    view: dict[str, Any] = mask_text(investigation.summary())
    ids = [UUID(a["alert_id"]) for a in view["alerts"]]
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        now = alerts_by_id(cursor, ids)
    for cited in view["alerts"]:
        current = now.get(UUID(cited["alert_id"]))
        cited["now"] = (
            None
            if current is None
            else {
                "status": current["status"],
                "review_status": current["review_status"],
                "last_seen": current["last_seen"].isoformat(),
            }
        )
    return view


@router.post(
    "/investigations",
    dependencies=[allow("investigation.manage")],
    status_code=201,
    tags=["supervision"],
)
def open_investigation(
    body: OpenInvestigation,
    response: Response,
    runtime: RuntimeDep,
    ledger: Ledger,
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
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        found = alerts_by_id(cursor, body.alert_ids)
    cited = []
    for n, alert_id in enumerate(body.alert_ids):
        alert = found.get(alert_id)
        try:
            if alert is None:
                raise NotFound(f"no alert with id {alert_id}")
            check_alert(principal, alert)
        except NotFound as missing:
            raise NotFound(missing.message, field=f"alert_ids[{n}]") from None
        cited.append(CitedAlert(alert_id, alert["rule"], tuple(alert["evidence"])))
    investigation = ledger.open_investigation(
        subject_kind=kind.value,
        subject_id=body.subject_id,
        alerts=cited,
        grounds=body.grounds,
        provenance=with_reason(by, body.grounds),
    )
    response.headers["Location"] = f"/investigations/{investigation.id}"
    return investigation_view(runtime, investigation, response)


@router.get(
    "/investigations/{investigation_id}",
    dependencies=[allow("investigation.read")],
    tags=["supervision"],
)
def get_investigation(
    investigation_id: UUID, response: Response, runtime: RuntimeDep, ledger: Ledger
) -> dict[str, Any]:
    return investigation_view(runtime, ledger.get_investigation(investigation_id), response)


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
    runtime: RuntimeDep,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    investigation = ledger.add_investigation_note(
        investigation_id,
        text=body.text,
        provenance=by,
        expected_version=parse_if_match(if_match),
    )
    return investigation_view(runtime, investigation, response)


@router.post(
    "/investigations/{investigation_id}/findings",
    dependencies=[allow("investigation.manage")],
    tags=["supervision"],
)
def record_findings(
    investigation_id: UUID,
    body: Findings,
    response: Response,
    runtime: RuntimeDep,
    ledger: Ledger,
    by: By,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Findings, with a verdict on cited alerts: confirmed, or dismissed with a reason."""
    investigation = ledger.record_investigation_findings(
        investigation_id,
        summary=body.summary,
        verdicts=[VerdictInput(v.alert_id, v.verdict, v.reason) for v in body.verdicts],
        provenance=with_reason(by, body.summary),
        expected_version=parse_if_match(if_match),
    )
    return investigation_view(runtime, investigation, response)


def _violation_order(
    ledger: ReliefLedger, principal: Principal, part: ViolationPart
) -> ViolationOrder:
    """The violation and sanctions a closure orders, their records checked against scope."""
    try:
        check_record(ledger, principal, ledger.get_contract(part.contract_id))
    except NotFound as missing:
        raise NotFound(missing.message, field="violation.contract_id") from None
    if part.ban is not None:
        check_division(principal, part.ban.deciding_unit, field="violation.ban.deciding_unit")
    return ViolationOrder(
        contract_id=part.contract_id,
        kind=part.kind,
        severity=part.severity,
        description=part.description,
        penalty=(
            PenaltyOrder(part.penalty.kind, part.penalty.basis, part.penalty.amount)
            if part.penalty
            else None
        ),
        termination=(
            TerminationOrder(
                part.termination.effective_at, part.termination.basis, part.termination.reason
            )
            if part.termination
            else None
        ),
        ban=(
            BanOrder(part.ban.start, part.ban.end, part.ban.reason, part.ban.deciding_unit)
            if part.ban
            else None
        ),
    )


@router.post(
    "/investigations/{investigation_id}/closure",
    dependencies=[allow("investigation.manage")],
    tags=["supervision"],
)
def close_investigation(
    investigation_id: UUID,
    body: Closure,
    response: Response,
    runtime: RuntimeDep,
    ledger: Ledger,
    by: By,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Close once: ``no_case_to_answer``, or ``violation`` recorded on a contract of the
    subject's contractor with its optional penalty, termination and ban, all in one save."""
    order = _violation_order(ledger, principal, body.violation) if body.violation else None
    investigation = ledger.close_investigation(
        investigation_id,
        outcome=body.outcome,
        summary=body.summary,
        violation=order,
        provenance=with_reason(by, body.summary),
        expected_version=parse_if_match(if_match),
    )
    return investigation_view(runtime, investigation, response)


# The contractor dossier --------------------------------------------------------------------------

#: Event type → (timeline kind, description of its payload).
_DESCRIBE: dict[str, tuple[str, Any]] = {
    "Contractor.Registered": (
        "registered",
        lambda p: f"registered as {p['contractor_type']} {p['name']} ({p['credit_code']})",
    ),
    "Contractor.Banned": (
        "ban",
        lambda p: f"banned {p['start']} to {p['end']} by {p['deciding_unit']}: {p['reason']}",
    ),
    "Contract.Awarded": (
        "contract_awarded",
        lambda p: (
            f"awarded by {p['purchaser']}: {', '.join(p['work_items'])} in "
            f"{', '.join(p['service_area'])}, {p['start']} to {p['end']}, value {p['value']}"
        ),
    ),
    "Contract.Amended": (
        "contract_amended",
        lambda p: (
            f"amended from {p['effective_from']}: {p['reason']} (value "
            f"{p['terms']['value']}, term {p['terms']['start']} to {p['terms']['end']})"
        ),
    ),
    "Contract.Renewed": (
        "contract_renewed",
        lambda p: (
            f"renewed from {p['effective_from']} to {p['terms']['end']}, value "
            f"{p['terms']['value']}: {p['reason']}"
        ),
    ),
    "Contract.Expired": ("contract_expired", lambda p: f"expired on {p['on']}"),
    "Contract.Invoiced": (
        "invoice",
        lambda p: (
            f"invoice {p['invoice_number']} of {p['amount']} for "
            f"{p['period_start']} to {p['period_end']}"
        ),
    ),
    "Contract.Evaluated": (
        "evaluation",
        lambda p: f"evaluated {p['score']} for {p['period_start']} to {p['period_end']}",
    ),
    "Contract.ViolationRecorded": (
        "violation",
        lambda p: f"violation {p['number']} ({p['kind']}, {p['severity']}): {p['description']}",
    ),
    "Contract.PenaltyImposed": (
        "penalty",
        lambda p: (
            f"penalty {p['kind']}"
            + (f" of {p['amount']}" if p.get("amount") else "")
            + f" for violation {p['violation']}: {p['basis']}"
        ),
    ),
    "Contract.Terminated": (
        "termination",
        lambda p: f"terminated at {p['effective_at']} ({p['basis']}): {p['reason']}",
    ),
    "Investigation.Opened": (
        "investigation_opened",
        lambda p: (
            f"investigation {p['number']} opened citing {len(p['alerts'])} alert(s): {p['grounds']}"
        ),
    ),
    "Investigation.NoteAdded": ("investigation_note", lambda p: str(p["text"])),
    "Investigation.FindingsRecorded": (
        "investigation_findings",
        lambda p: (
            f"findings: {p['summary']}"
            + "".join(f"; alert {v['alert_id']} {v['verdict']}" for v in p["verdicts"])
        ),
    ),
    "Investigation.Closed": (
        "investigation_closed",
        lambda p: (
            f"closed: {p['outcome']}"
            + (
                f" (violation {p['violation_number']} on contract {p['contract_id']})"
                if p.get("violation_number")
                else ""
            )
            + f": {p['summary']}"
        ),
    ),
}


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _history_items(
    runtime: Runtime, ledger: ReliefLedger, kind: str, aggregate_id: UUID
) -> list[dict[str, Any]]:
    items = []
    for event in aggregate_history(runtime.pool, ledger.mapper, aggregate_id):
        described = _DESCRIBE.get(event["type"])
        if described is None:
            continue  # e.g. WorkTakenOn: the award or amendment already says it
        name, describe = described
        try:
            text = describe(event["payload"])
        except (KeyError, TypeError):  # an older event shape: say what it is
            text = event["type"]
        items.append(
            {
                "position": event["position"],
                "at": event["recorded_at"],
                "kind": name,
                "record": {"kind": kind, "id": str(aggregate_id), "version": event["version"]},
                "actor": event["actor"],
                "description": _short(mask_text(text)),
            }
        )
    return items


@router.get(
    "/contractors/{contractor_id}/dossier",
    dependencies=[allow("contractor.dossier")],
    tags=["supervision"],
)
def dossier(
    contractor_id: UUID,
    runtime: RuntimeDep,
    ledger: Ledger,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=5000, description="timeline items, newest kept")] = 1000,
) -> dict[str, Any]:
    """Everything supervision holds on a contractor, on one timeline in log order: the
    register entry, contracts with their term histories, evaluations, invoices, services
    recorded under its contracts, alerts, investigations, violations, penalties, terminations
    and bans. Only contracts, services and alerts inside your scope are shown."""
    contractor = ledger.get_contractor(contractor_id)
    today = ledger.today()
    timeline = _history_items(runtime, ledger, "contractor", contractor.id)
    contracts = []
    for contract_id in contractor.contracts:
        contract = ledger.get_contract(contract_id)
        try:
            check_contract(ledger, principal, contract)
        except NotFound:
            continue
        contracts.append(contract.summary(today))
        timeline.extend(_history_items(runtime, ledger, "contract", contract.id))
    visible = {c["contract_id"] for c in contracts}
    scope, unplaced = alert_scope(principal)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        services, services_total = contractor_services(cursor, contractor.id, limit=limit)
        alerts: list[dict[str, Any]] = []
        token = None
        while True:
            page, token = query_alerts(
                cursor,
                contractor_id=contractor.id,
                scope=scope,
                unplaced=unplaced,
                limit=1000,
                after=token,
            )
            alerts.extend(page)
            if token is None or len(alerts) >= limit:
                break
        citing = investigations_citing(cursor, contractor.id)
    shown_services = [s for s in services if str(s["contract_id"]) in visible]
    for service in shown_services:
        timeline.append(
            {
                "position": service["position"],
                "at": jsonable(service["recorded_at"]),
                "kind": "service",
                "record": {"kind": "case", "id": str(service["case_id"]), "version": None},
                "actor": {"id": service["staff"]},
                "description": f"{service['work_item']} at {service['place']}, "
                f"{local_time(service['start'])} to {local_time(service['end'])}, under "
                f"contract {service['contract_id']}"
                + (
                    f" (voided at position {service['voided_at_position']})"
                    if service["voided_at_position"]
                    else ""
                ),
            }
        )
    for alert in alerts:
        timeline.append(
            {
                # An alert stands once its last piece of evidence is in the log.
                "position": max(alert["evidence"]),
                "at": alert["last_seen"].isoformat(),
                "kind": "alert",
                "record": {"kind": "alert", "id": str(alert["alert_id"]), "version": None},
                "actor": None,
                "description": _short(
                    f"{alert['rule']} ({alert['severity']}, {alert['status']}, "
                    f"{alert['review_status']}): {mask_text(alert['reason'])}"
                ),
            }
        )
    seen: set[UUID] = set()
    investigations = []
    candidates = [i.id for i in ledger.investigations_of("contractor", contractor.id)] + citing
    for investigation_id in candidates:
        if investigation_id in seen:
            continue
        seen.add(investigation_id)
        investigation = ledger.get_investigation(investigation_id)
        try:
            check_investigation(ledger, principal, investigation)
        except NotFound:
            continue
        investigations.append(investigation_view(runtime, investigation))
        timeline.extend(_history_items(runtime, ledger, "investigation", investigation.id))
    # Log order; an alert after the event that completed its evidence (same position).
    timeline.sort(
        key=lambda item: (item["position"], item["kind"] == "alert", item["record"]["id"])
    )
    truncated = len(timeline) > limit
    return {
        "contractor": contractor.summary(today),
        "contracts": contracts,
        "alerts": [_alert_view(a) for a in alerts],
        "investigations": investigations,
        "services": {"total_recorded": services_total, "shown": len(shown_services)},
        "sanctions": {
            "violations": [
                {"contract_id": c["contract_id"], **v} for c in contracts for v in c["violations"]
            ],
            "penalties": [
                {"contract_id": c["contract_id"], **p} for c in contracts for p in c["penalties"]
            ],
            "terminations": [
                {"contract_id": c["contract_id"], "terminated_at": c["terminated_at"]}
                for c in contracts
                if c["terminated_at"]
            ],
            "bans": contractor.summary(today)["bans"],
        },
        "timeline": timeline[-limit:],
        "truncated": truncated,
    }


# Declared interests ------------------------------------------------------------------------------


class RelativeBody(StrictModel):
    resident_id: ResidentNumber
    kinship: Annotated[str, Field(max_length=20, description="spouse, parent, child, ...")]


class Interests(StrictModel):
    resident_id: Annotated[ResidentNumber, Field(description="the staff member's own")]
    relatives: Annotated[list[RelativeBody], Field(max_length=50, default_factory=list)]
    reason: Reason = None


@router.post("/staff/{staff_id}/interests", dependencies=[allow("staff.interests")], tags=["staff"])
def declare_interests(
    staff_id: UUID, body: Interests, response: Response, ledger: Ledger, by: By
) -> dict[str, Any]:
    """Declare (利益冲突申报) the staff member's own resident ID and their relatives': kept only
    as blind indexes, for the conflict-of-interest red flag. Replaces any earlier declaration.
    The staff office declares for anyone in its scope; others for themselves only."""
    staff = ledger.declare_staff_interests(
        staff_id,
        resident_id=body.resident_id,
        relatives=[(r.resident_id, r.kinship) for r in body.relatives],
        provenance=with_reason(by, body.reason),
    )
    view = staff_view(ledger, staff, response)
    view["declared_relatives"] = len(staff.relatives)
    return view
