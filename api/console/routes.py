"""The console's pages: server-rendered HTML for supervisors, auditors and bureau heads.

Every page asks the API's own questions (api/access.py) of the signed-in principal before it
reads anything, and reads through the same projections' query modules, services and record
checks as the API, so it shows nothing the API would refuse that person and refuses nothing
the API would allow. A refusal is rendered as a page with the same status code as the API's
problem answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from psycopg import Cursor
from pydantic import ValidationError

from api import access
from api.access import RULES, check_action, check_record
from api.auth import Principal, Unauthenticated, mint_token
from api.console import i18n, oidc
from api.console.divisions import LEVELS, division_names, level_of, next_level
from api.console.session import (
    COOKIE,
    CSRF_FIELD,
    PATH,
    csrf_for,
    dev_sign_in_allowed,
    form_fields,
    session_token,
    signed_in,
)
from api.deps import MAX_SEQUENCE, acting_actor, read_cursor
from api.problems import STATUS_BY_ERROR
from api.read_audit import AuditRead, stated_purpose
from api.requests.supervision import Closure, Findings, Note, OpenInvestigation
from api.routes import audit as audit_routes
from api.routes import supervision as supervision_routes
from domain.case import CaseStatus, Programme, ReliefCase
from domain.errors import DomainError, InvalidValue, NotFound
from domain.provenance import Provenance, Role
from infra.audit_chain import version_at
from infra.checkpoints import checkpoints, load_public_key
from infra.history import aggregate_history
from infra.read_audit import reads_of, record_read
from infra.runtime import Runtime
from infra.verification_jobs import job, start_or_join
from projections.caseload import query_caseload
from projections.dossier import alert_view
from projections.history import mask_text
from projections.red_flags.projection import rule_catalogue
from projections.red_flags.queries import alerts_by_id, query_alerts
from projections.staffing_view import current_staffing, division_at, load_policies, month_ends

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


def _beijing(value: str | None, width: int = 19) -> str:
    """An ISO instant shown in Beijing time (the ledger stores UTC), to ``width`` characters
    of ``YYYY-MM-DD HH:MM:SS``."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S")[:width]


TEMPLATES.env.filters["beijing"] = _beijing


def _without(request: Request, key: str) -> str:
    """The page's query string less ``key`` (repeated parameters kept), ready for one more."""
    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != key])
    return rest + "&" if rest else ""


LOGIN_NONCE = "relief_console_login"

#: The console's pages → the access rule that opens them (the nav shows the allowed ones).
PAGES = (
    ("overview", "/console/", "caseload.read"),
    ("alerts", "/console/alerts", "alert.read"),
    ("investigations", "/console/investigations", "investigation.read"),
    ("audit", "/console/audit", "audit.read"),
)


class ConsoleRoute(APIRoute):
    """Refusals become pages: a sign-in redirect for no session, otherwise the problem's title
    and detail with the status code the API would answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated as error:
                if not isinstance(error, oidc.OidcError):
                    return RedirectResponse(f"{PATH}/login", status_code=303)
                return _error_page(request, error, 401)
            except DomainError as error:
                status = next((c for kind, c in STATUS_BY_ERROR if isinstance(error, kind)), 422)
                return _error_page(request, error, status)

        return route


def _lang_param(
    lang: Annotated[str | None, Query(pattern="^(zh|en)$", description="zh or en")] = None,
) -> None:
    """Every page takes ?lang= (declared, so the API's refusal of unknown parameters lets it
    through); the page reads it from the request."""


router = APIRouter(
    prefix=PATH,
    route_class=ConsoleRoute,
    include_in_schema=False,
    dependencies=[Depends(_lang_param)],
)


def _principal_or_none(request: Request) -> Principal | None:
    try:
        return signed_in(request)
    except Unauthenticated:
        return None


def _error_page(request: Request, error: DomainError, status: int) -> Response:
    """The problem the API would answer, as a page: its title, detail, field and rule."""
    return _page(
        request,
        "error.html",
        {
            "title": error.problem_title(),
            "detail": error.message,
            "field": error.field,
            "rule": error.rule,
        },
        status=status,
    )


def _page(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    lang = i18n.language(request)
    principal = _principal_or_none(request)
    token = session_token(request)
    nav = [
        (name, url)
        for name, url, action in PAGES
        if principal is not None and principal.role in RULES[action]
    ]
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "t": i18n.translator(lang),
            "lang": lang,
            "principal": principal,
            "nav": nav,
            "csrf_field": CSRF_FIELD,
            "csrf": csrf_for(token) if token and principal else "",
            "here": request.url.path,
            "query": dict(request.query_params),
            "query_without_lang": _without(request, "lang"),
            **context,
        },
        status_code=status,
    )
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, path=PATH, samesite="strict", httponly=True)
    response.headers["Cache-Control"] = "no-store"
    return response


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Signed = Annotated[Principal, Depends(signed_in)]
Cur = Annotated[Cursor[Any], Depends(read_cursor)]
Form = Annotated[dict[str, list[str]], Depends(form_fields)]


def _one(fields: dict[str, list[str]], name: str) -> str:
    return (fields.get(name) or [""])[0].strip()


def _by(principal: Principal, request: Request) -> Provenance:
    """As the API records a command's actor: the staff record the sign-in is linked to."""
    actor = acting_actor(_runtime(request).services, principal)
    return Provenance(actor=actor, correlation_id=f"console-{uuid.uuid4().hex[:12]}")


def _body(model: Any, data: dict[str, Any]) -> Any:
    """A request body built from a form exactly as the API would from JSON: the same model,
    the same refusals (the first field at fault, as the API's problem names it)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        raise InvalidValue(f"{field}: {first.get('msg', 'invalid')}", field=field) from None


# Sign-in ---------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    settings = _runtime(request).settings
    nonce = secrets.token_urlsafe(24)
    response = _page(
        request,
        "login.html",
        {
            "nonce": nonce,
            "dev": dev_sign_in_allowed(settings, request.client.host if request.client else None),
            "oidc": oidc.configured(settings),
            "roles": [r.value for r in Role if r is not Role.SYSTEM],
        },
    )
    # Login CSRF: the form must come from a page this browser was served (double submit).
    response.set_cookie(LOGIN_NONCE, nonce, path=PATH, samesite="strict", httponly=True)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    fields = parse_qs((await request.body()).decode("utf-8", errors="replace"), max_num_fields=20)
    nonce = request.cookies.get(LOGIN_NONCE)
    if not nonce or _one(fields, "nonce") != nonce:
        raise InvalidValue("the sign-in form is stale; reload the page", field="nonce")
    settings = _runtime(request).settings
    token = _one(fields, "token")
    if not token and _one(fields, "mint"):
        if not dev_sign_in_allowed(settings, request.client.host if request.client else None):
            raise InvalidValue("tokens are issued by the identity provider here", field="mint")
        token = mint_token(
            settings,
            subject=_one(fields, "sub"),
            role=_one(fields, "role"),
            organisation=_one(fields, "org"),
            scope=_one(fields, "scope"),
        )
    try:
        request.app.state.token_verifier.verify(token)  # refused here, not on the next page
    except Unauthenticated as refused:
        return _page(
            request,
            "error.html",
            {
                "title": refused.problem_title(),
                "detail": refused.message,
                "field": "token",
                "rule": refused.rule,
            },
            status=401,
        )
    response = RedirectResponse(f"{PATH}/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_NONCE, path=PATH)
    return response


OIDC_ATTEMPT = "relief_console_oidc"


def _callback_url(request: Request) -> str:
    return str(request.url_for("oidc_callback"))


@router.get("/login/oidc")
def oidc_start(request: Request) -> Response:
    """Send the browser to the identity provider (authorization-code flow with PKCE)."""
    settings = _runtime(request).settings
    if not oidc.configured(settings):
        raise NotFound("no identity provider is configured for the console", field="oidc")
    provider = oidc.discover(settings)
    url, attempt = oidc.start(settings, provider, _callback_url(request))
    response = RedirectResponse(url, status_code=302)
    # Lax, not Strict: the provider sends the browser back with a cross-site navigation.
    response.set_cookie(
        OIDC_ATTEMPT,
        attempt.cookie(),
        path=f"{PATH}/login",
        httponly=True,
        samesite="lax",
        max_age=600,
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login/callback", name="oidc_callback")
def oidc_callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=4000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=2000)] = None,
    iss: Annotated[str | None, Query(max_length=2000)] = None,
    session_state: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """The provider's answer: the code exchanged for the token, kept as the session."""
    settings = _runtime(request).settings
    if not oidc.configured(settings):
        raise NotFound("no identity provider is configured for the console", field="oidc")
    if error:
        raise oidc.OidcError(f"the identity provider refused: {error} {error_description or ''}")
    if not code or not state:
        raise oidc.OidcError("the provider's answer carries no code")
    attempt = oidc.Attempt.from_cookie(request.cookies.get(OIDC_ATTEMPT))
    token = oidc.finish(
        settings,
        oidc.discover(settings),
        request.app.state.token_verifier,
        attempt,
        code=code,
        state=state,
        redirect_uri=_callback_url(request),
    )
    # A page, not a redirect: the navigation that follows is then same-site, so the
    # SameSite=Strict session cookie goes with it.
    response = HTMLResponse(
        '<!doctype html><meta http-equiv="refresh" content="0;url=/console/">'
        '<a href="/console/">/console/</a>'
    )
    response.set_cookie(
        COOKIE,
        token,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(OIDC_ATTEMPT, path=f"{PATH}/login")
    return response


@router.post("/logout")
async def logout(request: Request, fields: Form) -> Response:
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


# Overview: caseload drill-down and staffing ------------------------------------------------------


@router.get("/")
def overview(
    request: Request,
    principal: Signed,
    cursor: Cur,
    division: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
    level: Annotated[
        str | None, Query(pattern="^(province|prefecture|county|township|village)$")
    ] = None,
    programme: Programme | None = None,
    status: CaseStatus | None = None,
) -> HTMLResponse:
    """Caseload by programme and status at one level, each division a link one level down;
    the staffing shortfalls of the counties and townships in the same place."""
    check_action(principal, "caseload.read")
    division = access.division_in_scope(principal, division)
    level = level or next_level(level_of(division)) or "village"
    items, _ = query_caseload(
        cursor,
        division=division,
        level=level,
        programme=programme.value if programme else None,
        status=status.value if status else None,
        limit=1000,
    )
    table: dict[str, dict[str, Any]] = {}
    for row in items:
        entry = table.setdefault(row["division"], {"cells": {}, "cases": 0})
        entry["cells"][(row["programme"], row["status"])] = row["cases"]
        entry["cases"] += row["cases"]
    columns = sorted({key for entry in table.values() for key in entry["cells"]})
    staffing: list[dict[str, Any]] = []
    if principal.role in RULES["staffing.read"]:
        moment = _runtime(request).services.clock.now()
        _, staffing, _ = current_staffing(
            cursor, moment, division=division, short_only=True, limit=50
        )
    names = division_names(cursor, [*table, *(row["division"] for row in staffing), division])
    parent = division[: max(len(division) - (3 if len(division) > 6 else 2), 2)]
    return _page(
        request,
        "overview.html",
        {
            "division": division,
            "level": level,
            "levels": LEVELS,
            "down": next_level(level),
            "table": table,
            "columns": columns,
            "staffing": staffing,
            "names": names,
            "parent": parent if parent != division and principal.covers(parent) else None,
            "programmes": [p.value for p in Programme],
            "statuses": [s.value for s in CaseStatus],
        },
    )


@router.get("/staffing/{code}")
def staffing_history(
    request: Request,
    principal: Signed,
    cursor: Cur,
    code: str,
    months: Annotated[int, Query(ge=1, le=36)] = 12,
) -> HTMLResponse:
    """One county's or township's shortfall at each past month end, as a small inline SVG."""
    check_action(principal, "staffing.read")
    if not code.isdigit() or len(code) not in (6, 9):
        raise InvalidValue("a county or township code (6 or 9 digits)", field="code")
    access.check_prefix(principal, code, field="code")
    policies = load_policies(cursor)
    moment = _runtime(request).services.clock.now()
    points: list[dict[str, Any]] = []
    for end in month_ends(moment, months):  # oldest first: the chart reads left to right
        _, row = division_at(cursor, code, end, policies=policies)
        points.append(
            {
                "at": end.date().isoformat(),
                "shortfall": row["shortfall"],
                "minimum": row["minimum"],
                "staff": row["staff"],
            }
        )
    top = max([int(p["shortfall"]) for p in points] + [1])
    width, height = 240, 60
    step = width / max(len(points), 1)
    bars = [
        {
            **p,
            "x": round(i * step + 1, 1),
            "w": round(step - 2, 1),
            "h": round(p["shortfall"] / top * (height - 12), 1),
        }
        for i, p in enumerate(points)
    ]
    return _page(
        request,
        "staffing_chart.html" if request.headers.get("hx-request") else "staffing_page.html",
        {
            "code": code,
            "bars": bars,
            "width": width,
            "height": height,
            "top": top,
            "names": division_names(cursor, [code]),
        },
    )


# Alerts ---------------------------------------------------------------------


@router.get("/alerts")
def alerts(
    request: Request,
    principal: Signed,
    cursor: Cur,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    county: Annotated[str | None, Query(max_length=6)] = None,
    contractor_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    review_status: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    """The alerts queue: the API's filters (empty fields mean no filter), newest first."""
    check_action(principal, "alert.read")
    rule, county, status, review_status = (v or None for v in (rule, county, status, review_status))
    if rule is not None and rule not in supervision_routes.RULE_NAMES:
        raise InvalidValue(f"no rule named {rule!r}", field="rule")
    if status not in (None, "open", "cleared"):
        raise InvalidValue("status is open or cleared", field="status")
    if review_status not in (None, "unreviewed", "under_review", "confirmed", "dismissed"):
        raise InvalidValue("unknown review status", field="review_status")
    if county is not None:
        if not county.isdigit() or len(county) not in (2, 4, 6):
            raise InvalidValue("a county code or its prefix", field="county")
        access.check_prefix(principal, county, field="county")
    contractor = None
    if contractor_id:
        try:
            contractor = uuid.UUID(contractor_id)
        except ValueError:
            raise InvalidValue("not a UUID", field="contractor_id") from None
    scope, unplaced = access.alert_scope(principal)
    try:
        items, token = query_alerts(
            cursor,
            contractor_id=contractor,
            county=county,
            rule=rule,
            status=status,
            review_status=review_status,
            scope=scope,
            unplaced=unplaced,
            limit=50,
            after=after,
        )
    except ValueError as error:
        raise InvalidValue(str(error), field="after") from None
    views = [alert_view(a) for a in items]
    names = division_names(cursor, [v["county"] for v in views if v.get("county")])
    next_query = (
        urlencode(
            {**{k: v for k, v in request.query_params.items() if k != "after"}, "after": token}
        )
        if token
        else None
    )
    return _page(
        request,
        "alerts.html",
        {
            "alerts": views,
            "rules": [r["rule"] for r in rule_catalogue()],
            "names": names,
            "next_query": next_query,
            "may_investigate": principal.role in RULES["investigation.manage"],
        },
    )


@router.get("/events/{position}")
def evidence_event(
    request: Request,
    principal: Signed,
    position: Annotated[int, FastPath(ge=1, le=MAX_SEQUENCE)],
) -> HTMLResponse:
    """An alert's evidence: the event at a global position, inside its record's history (a
    case's events on the case page, which asks the purpose of the read first)."""
    runtime = _runtime(request)
    with runtime.pool.connection() as conn:
        row = conn.execute(
            "SELECT originator_id FROM relief_events WHERE notification_id = %s", [position]
        ).fetchone()
    if row is None:
        raise NotFound(f"no event at position {position}")
    ledger = runtime.ledger
    record: Any = ledger.repository.get(row[0])
    action = _READ_ACTION.get(type(record).__name__, "audit.read")
    check_action(principal, action)
    check_record(ledger, principal, record)
    if isinstance(record, ReliefCase):
        return RedirectResponse(f"{PATH}/cases/{record.id}?position={position}#p{position}", 303)  # type: ignore[return-value]
    items = mask_text(aggregate_history(runtime.pool, ledger.mapper, record.id))
    return _page(
        request,
        "record.html",
        {
            "kind": type(record).__name__,
            "record_id": str(record.id),
            "items": items,
            "position": position,
        },
    )


_READ_ACTION = {
    "ReliefCase": "case.read",
    "Household": "household.read",
    "Contract": "contract.read",
    "Contractor": "contractor.read",
    "StaffMember": "staff.read",
    "Investigation": "investigation.read",
}


# Cases ---------------------------------------------------------------------


@router.get("/cases/{case_id}")
def case_page(
    request: Request,
    principal: Signed,
    case_id: uuid.UUID,
    purpose: Annotated[str | None, Query(max_length=500)] = None,
    at: Annotated[str | None, Query(max_length=40)] = None,
    position: Annotated[int | None, Query(ge=1, le=MAX_SEQUENCE)] = None,
) -> HTMLResponse:
    """The case: asks the purpose first (as the API's X-Purpose), records the read, then shows
    the case (as of ``at`` if given), its timeline, the decision view, and who read it."""
    check_action(principal, "case.read")
    runtime = _runtime(request)
    ledger = runtime.ledger
    case = ledger.get_case(case_id)
    check_record(ledger, principal, case)
    if not purpose:
        return _page(
            request, "purpose.html", {"case_id": str(case_id), "at": at or "", "position": position}
        )
    reason = stated_purpose(purpose)
    record_read(runtime.pool, case_id, principal.actor, reason, f"{PATH}/cases/{case_id}")
    shown = case
    as_of = None
    if at:
        try:
            moment = dt.datetime.fromisoformat(at)
        except ValueError:
            raise InvalidValue(
                "at: an ISO time, e.g. 2026-11-20T10:00:00+08:00", field="at"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))  # Beijing time
        version = version_at(runtime.pool, case_id, moment)
        if version is None:
            raise NotFound(f"case {case_id} did not exist at {moment.isoformat()}", field="at")
        shown = ledger.get_case(case_id, version=version)
        as_of = moment.isoformat()
    history = aggregate_history(runtime.pool, ledger.mapper, case_id)
    decisions = audit_routes.decision_view(case_id, ledger, principal.actor)["items"]
    reads = reads_of(runtime.pool, case_id, 200) if principal.role in RULES["audit.read"] else None
    return _page(
        request,
        "case.html",
        {
            "case": shown.summary(),
            "case_id": str(case_id),
            "version": shown.version,
            "current_version": case.version,
            "as_of": as_of,
            "at": at or "",
            "history": history,
            "decisions": decisions,
            "reads": reads,
            "purpose": reason,
            "position": position,
            "may_reveal": principal.role in access.SEES_FULL_IDS,
            "household_id": str(case.household_id),
        },
    )


@router.post("/cases/{case_id}/reveal")
def reveal(request: Request, principal: Signed, case_id: uuid.UUID, fields: Form) -> HTMLResponse:
    """The household's members with full ID numbers: the same purpose-stated, recorded read as
    ``GET /households/{id}?reveal=true``, for the roles whose work needs them."""
    check_action(principal, "case.read")
    check_action(principal, "household.read")
    runtime = _runtime(request)
    ledger = runtime.ledger
    case = ledger.get_case(case_id)
    check_record(ledger, principal, case)
    household = ledger.get_household(case.household_id)
    check_record(ledger, principal, household)
    access.check_sees_full_ids(principal)
    reason = stated_purpose(_one(fields, "purpose"))
    record_read(
        runtime.pool, household.id, principal.actor, reason, f"{PATH}/cases/{case_id}/reveal"
    )
    return _page(request, "household.html", {"household": household.summary(masked=False)})


# Contractor dossier ---------------------------------------------------------------------


@router.get("/contractors/{contractor_id}")
def contractor_page(
    request: Request, principal: Signed, cursor: Cur, contractor_id: uuid.UUID
) -> HTMLResponse:
    """The dossier, as ``GET /contractors/{id}/dossier`` gives it to the same person."""
    check_action(principal, "contractor.dossier")
    runtime = _runtime(request)
    ledger = runtime.ledger
    access.check_contractor_supervised(ledger, principal, ledger.get_contractor(contractor_id))
    dossier = supervision_routes.dossier(
        contractor_id, runtime, cursor, ledger, runtime.services, principal, limit=1000
    )
    return _page(request, "dossier.html", {"dossier": dossier, "contractor_id": str(contractor_id)})


# Investigations ---------------------------------------------------------------------


def _open_investigations(cursor: Cursor[Any], principal: Principal, ledger: Any) -> list[Any]:
    """Open investigations the reader may see: those citing alerts under review in the
    reader's scope (every investigation cites at least one alert)."""
    scope, unplaced = access.alert_scope(principal)
    ids: dict[uuid.UUID, None] = {}
    after = None
    while True:
        items, after = query_alerts(
            cursor,
            contractor_id=None,
            county=None,
            rule=None,
            status=None,
            review_status="under_review",
            scope=scope,
            unplaced=unplaced,
            limit=1000,
            after=after,
        )
        for alert in items:
            for investigation_id in alert["investigation_ids"]:
                ids[investigation_id] = None
        if after is None or not items:
            break
    found = []
    for investigation_id in ids:
        try:
            investigation = ledger.get_investigation(investigation_id)
            access.check_investigation(ledger, principal, investigation)
        except NotFound:
            continue
        if investigation.is_open:
            found.append(investigation)
    return sorted(found, key=lambda i: i.number)


@router.get("/investigations")
def investigations(
    request: Request,
    principal: Signed,
    cursor: Cur,
    alert_ids: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    """Open investigations, and the opening form (with the alerts chosen in the queue)."""
    check_action(principal, "investigation.read")
    ledger = _runtime(request).ledger
    chosen = []
    for raw in alert_ids or []:
        try:
            alert = alerts_by_id(cursor, [uuid.UUID(raw)]).get(uuid.UUID(raw))
        except ValueError:
            continue
        if alert is None:
            continue
        try:
            access.check_alert(principal, alert)
        except NotFound:
            continue
        chosen.append(alert_view(alert))
    return _page(
        request,
        "investigations.html",
        {
            "items": [i.summary() for i in _open_investigations(cursor, principal, ledger)],
            "chosen": chosen,
            "may_manage": principal.role in RULES["investigation.manage"],
        },
    )


@router.post("/investigations")
def open_investigation(request: Request, principal: Signed, cursor: Cur, fields: Form) -> Response:
    check_action(principal, "investigation.manage")
    runtime = _runtime(request)
    body = _body(
        OpenInvestigation,
        {
            "subject_kind": _one(fields, "subject_kind"),
            "subject_id": _one(fields, "subject_id"),
            "alert_ids": [a for a in fields.get("alert_ids", []) if a],
            "grounds": _one(fields, "grounds"),
        },
    )
    opened = supervision_routes.open_investigation(
        body,
        Response(),
        cursor,
        runtime.ledger,
        runtime.services,
        _by(principal, request),
        principal,
    )
    return RedirectResponse(f"{PATH}/investigations/{opened['investigation_id']}", 303)


@router.get("/investigations/{investigation_id}")
def investigation_page(
    request: Request, principal: Signed, cursor: Cur, investigation_id: uuid.UUID
) -> HTMLResponse:
    check_action(principal, "investigation.read")
    ledger = _runtime(request).ledger
    investigation = ledger.get_investigation(investigation_id)
    access.check_investigation(ledger, principal, investigation)
    view = supervision_routes.get_investigation(investigation_id, Response(), cursor, ledger)
    contracts: list[str] = []
    if investigation.subject_kind.value == "contractor":
        contracts = [str(c) for c in ledger.get_contractor(investigation.subject_id).contracts]
    return _page(
        request,
        "investigation.html",
        {
            "inv": view,
            "investigation_id": str(investigation_id),
            "version": investigation.version,
            "contracts": contracts,
            "may_manage": principal.role in RULES["investigation.manage"],
        },
    )


def _investigation_command(
    request: Request,
    principal: Signed,
    cursor: Cur,
    investigation_id: uuid.UUID,
    fields: dict[str, list[str]],
    kind: str,
) -> Response:
    check_action(principal, "investigation.manage")
    runtime = _runtime(request)
    ledger = runtime.ledger
    access.check_investigation(ledger, principal, ledger.get_investigation(investigation_id))
    version_text = _one(fields, "version")
    version = int(version_text) if version_text.isdigit() else None
    by = _by(principal, request)
    services = runtime.services
    if kind == "notes":
        note = _body(Note, {"text": _one(fields, "text")})
        supervision_routes.add_note(
            investigation_id, note, Response(), cursor, services, by, version
        )
    elif kind == "findings":
        verdicts = []
        for alert_id in fields.get("alert_id", []):
            verdict = _one(fields, f"verdict_{alert_id}")
            if verdict:
                verdicts.append(
                    {
                        "alert_id": alert_id,
                        "verdict": verdict,
                        "reason": _one(fields, f"reason_{alert_id}") or None,
                    }
                )
        findings = _body(Findings, {"summary": _one(fields, "summary"), "verdicts": verdicts})
        supervision_routes.record_findings(
            investigation_id, findings, Response(), cursor, services, by, version
        )
    else:
        data: dict[str, Any] = {
            "outcome": _one(fields, "outcome"),
            "summary": _one(fields, "summary"),
        }
        if data["outcome"] == "violation":
            violation: dict[str, Any] = {
                "contract_id": _one(fields, "contract_id"),
                "kind": _one(fields, "violation_kind"),
                "severity": _one(fields, "severity"),
                "description": _one(fields, "description"),
            }
            if _one(fields, "penalty_kind"):
                violation["penalty"] = {
                    "kind": _one(fields, "penalty_kind"),
                    "basis": _one(fields, "penalty_basis"),
                    "amount": _one(fields, "penalty_amount") or None,
                }
            if _one(fields, "termination_at"):
                violation["termination"] = {
                    "effective_at": _one(fields, "termination_at"),
                    "basis": _one(fields, "termination_basis"),
                    "reason": _one(fields, "termination_reason"),
                }
            if _one(fields, "ban_start"):
                violation["ban"] = {
                    "start": _one(fields, "ban_start"),
                    "end": _one(fields, "ban_end"),
                    "reason": _one(fields, "ban_reason"),
                    "deciding_unit": _one(fields, "ban_unit"),
                }
            data["violation"] = violation
        closure = _body(Closure, data)
        supervision_routes.close_investigation(
            investigation_id, closure, Response(), cursor, ledger, services, by, principal, version
        )
    return RedirectResponse(f"{PATH}/investigations/{investigation_id}", 303)


@router.post("/investigations/{investigation_id}/{kind}")
def investigation_command(
    request: Request,
    principal: Signed,
    cursor: Cur,
    investigation_id: uuid.UUID,
    kind: str,
    fields: Form,
) -> Response:
    """Notes, findings and closure: the API's own route functions, from the form's fields."""
    if kind not in ("notes", "findings", "closure"):
        raise NotFound(f"no action {kind!r}")
    return _investigation_command(request, principal, cursor, investigation_id, fields, kind)


# Audit ---------------------------------------------------------------------


@router.get("/audit")
def audit(
    request: Request,
    principal: Signed,
    verify: bool = False,
) -> HTMLResponse:
    """Chain status (on request: it reads the whole log), how far it is signed, the newest
    checkpoints, and the evidence-bundle download with the command that checks it offline."""
    check_action(principal, "audit.read")
    runtime = _runtime(request)
    report = _verification_report(runtime, principal) if verify else None
    key = load_public_key(runtime.settings.audit_key_file)
    with runtime.pool.connection() as conn:
        row = conn.execute("SELECT coalesce(max(sequence), 0) FROM audit.checkpoints").fetchone()
    last = int(row[0]) if row else 0
    newest = checkpoints(runtime.pool, after=max(last - 20, 0), limit=20)[::-1]
    return _page(
        request,
        "audit.html",
        {
            "report": report,
            "verification_running": verify and report is None,
            "checkpoints": [c.as_dict() for c in newest],
            "public_key": key.hex() if key else None,
        },
    )


def _verification_report(runtime: Runtime, principal: Principal) -> dict[str, Any] | None:
    """The chain verification as ``GET /audit/verify`` runs it: a job (one at a time, a second
    request joins it), waited for here up to ``VERIFY_WAIT_S``; None while it still runs (the
    page says so, and asking again joins the same job)."""
    job_id = start_or_join(
        runtime.pool, principal.actor.id, lambda: audit_routes.verification_report(runtime)
    )
    deadline = time.monotonic() + VERIFY_WAIT_S
    while True:
        state = job(runtime.pool, job_id)
        if state is None or state["status"] != "running" or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if state is None or state["status"] != "done":
        return None
    report: dict[str, Any] = state["report"]
    return report


#: How long the audit page waits for a verification before saying it still runs.
VERIFY_WAIT_S = 10


@router.get("/audit/bundle")
def bundle(
    request: Request,
    principal: Signed,
    aggregate_id: uuid.UUID,
    purpose: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """The evidence bundle, as ``GET /audit/bundles/{id}`` answers the same person."""
    check_action(principal, "audit.read")
    runtime = _runtime(request)
    read = AuditRead(principal, stated_purpose(purpose))
    return audit_routes.bundle(aggregate_id, runtime, runtime.ledger, read)
