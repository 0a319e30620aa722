"""Who may do and see what: every role rule of the HTTP API, in one place.

Two questions are asked of every request, in this order:

1. May this role take this action at all? (``RULES``; a refusal is 403, before anything is
   loaded, so a refused caller learns nothing about the record.)
2. Is the record inside the caller's scope? Each token carries a division-code prefix; a record
   outside it answers 404, as if it did not exist (a Guangzhou officer cannot even learn that a
   Shenzhen case exists). Contractor staff are further bound to their own contractor, its
   contracts, and the service areas of its contracts in force.

The domain keeps its own finer checks (the approver must belong to the case's county, an
investigator may not approve, …); these rules come first and are coarser.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, Query, Request, params
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentPrincipal, Principal
from domain.case import ReliefCase
from domain.clock import Clock
from domain.contract import DEFAULT_LATE_ENTRY_DAYS, Contract
from domain.contractor import Contractor, contractor_id_for
from domain.errors import NotFound, NotPermitted
from domain.household import Household
from domain.identifiers import parse_division_code
from domain.investigation import Investigation, SubjectKind
from domain.person import Person
from domain.provenance import Role
from domain.staff import KINDS_OF_ROLE, StaffMember, sign_in_id
from infra.ledger import WouldLoad, current_loads

CLERK, HANDLER, CONTRACTOR = Role.INTAKE_CLERK, Role.HANDLING_STAFF, Role.CONTRACTOR_STAFF
APPROVER, SUPERVISOR, AUDITOR, INTEGRATION = (
    Role.APPROVER,
    Role.SUPERVISOR,
    Role.AUDITOR,
    Role.INTEGRATION,
)
GOVERNMENT_READERS = frozenset({CLERK, HANDLER, APPROVER, SUPERVISOR, AUDITOR})
DASHBOARDS = GOVERNMENT_READERS | {INTEGRATION}

#: action → roles allowed to take it. Contractor staff never decide eligibility or pay.
RULES: dict[str, frozenset[Role]] = {
    # households and people (the one-door window and the handling office)
    "household.register": frozenset({CLERK, HANDLER}),
    "household.change": frozenset({CLERK, HANDLER}),
    "household.read": GOVERNMENT_READERS | {CONTRACTOR},
    "death.record": frozenset({CLERK, HANDLER}),
    # relief cases
    "case.receive": frozenset({CLERK, HANDLER}),
    "case.read": GOVERNMENT_READERS | {CONTRACTOR},
    "case.assign": frozenset({HANDLER}),
    "case.investigate": frozenset({CLERK, HANDLER, CONTRACTOR}),
    "case.decide": frozenset({APPROVER}),
    "case.pay": frozenset({HANDLER, APPROVER}),
    "case.serve": frozenset({HANDLER, CONTRACTOR}),
    "case.manage": frozenset({HANDLER, APPROVER}),  # reviews, suspension, closure, corrections
    # purchasing
    "contractor.register": frozenset({HANDLER}),
    "contractor.read": GOVERNMENT_READERS | {CONTRACTOR},
    "contractor.ban": frozenset({APPROVER, SUPERVISOR}),
    "contract.manage": frozenset({HANDLER, APPROVER}),  # award, amend, renew, expiry, invoices
    "contract.read": GOVERNMENT_READERS | {CONTRACTOR},
    "contract.evaluate": frozenset({HANDLER, APPROVER, SUPERVISOR}),
    "contract.sanction": frozenset({APPROVER, SUPERVISOR}),  # violations, penalties
    "contract.terminate": frozenset({HANDLER, APPROVER, SUPERVISOR}),
    "staff.manage": frozenset({HANDLER, APPROVER}),
    "staff.read": GOVERNMENT_READERS | {CONTRACTOR},
    # read models and operations
    "caseload.read": DASHBOARDS,
    "staffing.read": DASHBOARDS,
    "staffing.policy": frozenset({APPROVER, SUPERVISOR}),
    # the local minimum-living standards: published figures, read by every government reader
    "standards.read": DASHBOARDS,
    "standards.set": frozenset({APPROVER, SUPERVISOR}),
    "operations.read": frozenset({HANDLER, SUPERVISOR, AUDITOR, INTEGRATION}),
    # audit
    "audit.read": frozenset({SUPERVISOR, AUDITOR}),
    # supervision: red flags, investigations, the contractor dossier
    "alert.read": frozenset({SUPERVISOR, AUDITOR}),
    "investigation.manage": frozenset({SUPERVISOR}),  # open, notes, findings, closure
    "investigation.read": frozenset({SUPERVISOR, AUDITOR}),
    "contractor.dossier": frozenset({SUPERVISOR, AUDITOR}),
    # declared interests: the staff office, or the staff member themself (SELF_ONLY)
    "staff.interests": frozenset({HANDLER, APPROVER, CLERK, CONTRACTOR}),
}

#: action → (path parameter, roles that may take the action on their own record only): the
#: token's subject must be the id in that path parameter.
SELF_ONLY: dict[str, tuple[str, frozenset[Role]]] = {
    "staff.interests": ("staff_id", frozenset({CLERK, CONTRACTOR})),
}

#: The scope that reads records without a division of their own (the province).
PROVINCE_WIDE = "44"

#: Roles that see resident ID numbers in full when they ask for them (the read is recorded).
SEES_FULL_IDS = frozenset({CLERK, HANDLER, APPROVER})


def check_sees_full_ids(principal: Principal) -> None:
    if principal.role not in SEES_FULL_IDS:
        raise NotPermitted(f"a {principal.role.value} sees ID numbers masked only", field="reveal")


def check_action(principal: Principal, action: str) -> None:
    allowed = RULES[action]
    if principal.role not in allowed:
        raise NotPermitted(
            f"a {principal.role.value} may not {action.replace('.', ': ')}", field="role"
        )


def check_division(principal: Principal, division: str, *, field: str = "division") -> None:
    """A division named in a request body must be valid and lie inside the caller's scope."""
    division = parse_division_code(division, field=field).code  # invalid: 422, not 403
    check_prefix(principal, division, field=field)


def check_prefix(principal: Principal, division: str, *, field: str = "division") -> None:
    if not principal.covers(division):
        raise NotPermitted(f"{division} is outside your scope ({principal.scope})", field=field)


#: A division code prefix as a read filter takes it: province to village.
DIVISION_PREFIX = r"^\d{2}(\d{2}(\d{2}(\d{3}(\d{3})?)?)?)?$"


async def scoped_division(
    principal: CurrentPrincipal,
    division: Annotated[
        str | None,
        Query(
            pattern=DIVISION_PREFIX,
            description="division code prefix, province to village (default: your scope)",
        ),
    ] = None,
) -> str:
    """A read filter: the caller's scope when none is given, refused when wider or elsewhere."""
    return division_in_scope(principal, division)


def division_in_scope(principal: Principal, division: str | None) -> str:
    """``division``, or the caller's scope when none is given; refused when wider or beside."""
    if division is None:
        return principal.scope
    check_prefix(principal, division)
    return division


ScopedDivision = Annotated[str, Depends(scoped_division)]


# Scope of records -------------------------------------------------------------------------------


def _hidden(kind: str, record_id: object) -> NotFound:
    return NotFound(f"no {kind} with id {record_id}")


def contractor_areas(ledger: Any, credit_code: str, today: dt.date | None = None) -> list[str]:
    """Service areas of the contracts under which a contractor's staff may record work today:
    those in force, and those whose last day lies at most the late-entry window back (work
    done while they ran may still be entered; the domain then judges each entry by the terms
    in force on the day of the work). Every area the contract's terms ever named counts,
    since a late entry may concern a place an amendment later took out."""
    contractor_id = contractor_id_for(credit_code)
    if contractor_id not in ledger.repository:
        return []
    contractor: Contractor = ledger.get_contractor(contractor_id)
    # The API answers as of now, on the business day of the runtime's clock.
    today = today or getattr(ledger, "business_clock", Clock()).today()
    window = int(getattr(ledger, "late_entry_days", DEFAULT_LATE_ENTRY_DAYS))
    areas: list[str] = []
    for contract_id in contractor.contracts:
        contract: Contract = ledger.get_contract(contract_id)
        if contract.takes_entries_on(today, window):
            for _, terms in contract.terms_history:
                areas.extend(a for a in terms.service_area if a not in areas)
    return areas


def _within_contracts(ledger: Any, principal: Principal, divisions: Iterable[str]) -> bool:
    areas = contractor_areas(ledger, principal.actor.organisation)
    return any(d.startswith(a) and principal.covers(d) for d in divisions for a in areas)


def check_case(ledger: Any, principal: Principal, case: ReliefCase) -> None:
    village = case.registered_division.code
    if principal.role is CONTRACTOR:
        if not _within_contracts(ledger, principal, [village]):
            raise _hidden("ReliefCase", case.id)
    elif not (principal.covers(village) or principal.covers(case.received_county)):
        raise _hidden("ReliefCase", case.id)


def check_household(ledger: Any, principal: Principal, household: Household) -> None:
    divisions = [household.registered_division.code]
    if principal.role is CONTRACTOR:
        if not _within_contracts(ledger, principal, divisions):
            raise _hidden("Household", household.id)
    elif not principal.covers(divisions[0]):
        raise _hidden("Household", household.id)


def check_person(ledger: Any, principal: Principal, person: Person) -> None:
    """A person is seen by whoever sees their household; one without a household (moved out)
    by whoever sees one of their cases; one with neither by province-wide readers only. The
    refusal names the person only (not the household or case that decided it)."""
    seen_through: list[tuple[Callable[[Any, Principal, Any], None], Any]]
    if person.household_id is not None:
        seen_through = [(check_household, ledger.get_household(person.household_id))]
    else:
        seen_through = [(check_case, ledger.get_case(case_id)) for case_id in person.cases]
    for check, record in seen_through:
        try:
            check(ledger, principal, record)
        except NotFound:
            continue
        return
    if seen_through or principal.scope != PROVINCE_WIDE or principal.role is CONTRACTOR:
        raise _hidden("Person", person.id)


def check_contract(ledger: Any, principal: Principal, contract: Contract) -> None:
    if principal.role is CONTRACTOR:
        if contract.contractor_credit_code != principal.actor.organisation:
            raise _hidden("Contract", contract.id)
        return
    # A county officer sees a contract bought for their whole prefecture, and vice versa.
    places = [contract.purchaser, *contract.terms.service_area]
    if not any(p.startswith(principal.scope) or principal.scope.startswith(p) for p in places):
        raise _hidden("Contract", contract.id)


def check_contractor(ledger: Any, principal: Principal, contractor: Contractor) -> None:
    """The contractor register is province-wide; contractor staff see their own entry only."""
    if principal.role is CONTRACTOR and contractor.credit_code != principal.actor.organisation:
        raise _hidden("Contractor", contractor.id)


def check_staff(ledger: Any, principal: Principal, staff: StaffMember) -> None:
    if staff.contract_id is not None:
        if principal.role is CONTRACTOR:
            if staff.contractor_id != contractor_id_for(principal.actor.organisation):
                raise _hidden("StaffMember", staff.id)
            return
        check_contract(ledger, principal, ledger.get_contract(staff.contract_id))
        return
    if principal.role is CONTRACTOR:
        raise _hidden("StaffMember", staff.id)
    places = [p for p in (staff.government_unit, staff.assignment) if p]
    if not any(principal.covers(p) for p in places):
        raise _hidden("StaffMember", staff.id)


# Supervision ------------------------------------------------------------------------------------


def check_contractor_supervised(ledger: Any, principal: Principal, contractor: Contractor) -> None:
    """What supervision knows of a contractor (dossier, investigations) is seen where it works:
    a contract of it bought or served inside the caller's scope (as ``check_contract``), or
    the registering authority of its credit code (positions 3-8) inside the scope; the
    province sees every contractor. Contractor staff: their own only."""
    if principal.role is CONTRACTOR:
        check_contractor(ledger, principal, contractor)
        return
    if principal.scope == PROVINCE_WIDE or principal.covers(contractor.credit_code[2:8]):
        return
    for contract_id in contractor.contracts:
        try:
            check_contract(ledger, principal, ledger.get_contract(contract_id))
        except NotFound:
            continue
        return
    raise _hidden("Contractor", contractor.id)


def check_investigation(ledger: Any, principal: Principal, investigation: Investigation) -> None:
    """An investigation is seen by whoever sees its subject (as supervision sees it)."""
    try:
        if investigation.subject_kind is SubjectKind.CONTRACTOR:
            check_contractor_supervised(
                ledger, principal, ledger.get_contractor(investigation.subject_id)
            )
        else:
            check_staff(ledger, principal, ledger.get_staff(investigation.subject_id))
    except NotFound:
        raise _hidden("Investigation", investigation.id) from None


def alert_scope(principal: Principal) -> tuple[str, bool]:
    """Which alerts a reader sees: those of counties under their scope, and (province only)
    those without a county (contracts bought above county level, records without a place)."""
    return principal.scope, principal.scope == PROVINCE_WIDE


def check_alert(principal: Principal, alert: dict[str, Any]) -> None:
    """One alert (a row of the alerts read model): hidden (404) outside the reader's scope."""
    county = alert.get("county")
    scope, unplaced = alert_scope(principal)
    if (county is None and not unplaced) or (county is not None and not county.startswith(scope)):
        raise NotFound(f"no alert with id {alert.get('alert_id')}")


async def scoped_county(
    principal: CurrentPrincipal,
    county: Annotated[
        str | None,
        Query(
            pattern=r"^\d{2}(\d{2}(\d{2})?)?$",
            description="county code or its prefix (province, prefecture); inside your scope",
        ),
    ] = None,
) -> str | None:
    """A county filter of alerts: refused when wider than or beside the caller's scope."""
    if county is not None:
        check_prefix(principal, county, field="county")
    return county


ScopedCounty = Annotated[str | None, Depends(scoped_county)]


#: Record kind → (how to load it, how to check it). Used for path ids and audit reads.
CHECKS: dict[type, Callable[[Any, Principal, Any], None]] = {
    ReliefCase: check_case,
    Household: check_household,
    Person: check_person,
    Contract: check_contract,
    Contractor: check_contractor,
    StaffMember: check_staff,
    Investigation: check_investigation,
}

#: Stricter checks of a path's record for some actions: the contractor register is
#: province-wide, what supervision holds on a contractor is not.
ACTION_CHECKS: dict[str, dict[type, Callable[[Any, Principal, Any], None]]] = {
    "contractor.dossier": {Contractor: check_contractor_supervised},
}

#: Path parameter → the record kind it names.
PATH_KINDS: dict[str, type] = {
    "case_id": ReliefCase,
    "household_id": Household,
    "contract_id": Contract,
    "contractor_id": Contractor,
    "staff_id": StaffMember,
    "investigation_id": Investigation,
}


def check_record(ledger: Any, principal: Principal, record: Any) -> None:
    """Any aggregate: refused (as not found) when outside the caller's scope."""
    check = CHECKS.get(type(record))
    if check is not None:
        check(ledger, principal, record)
    elif principal.scope != PROVINCE_WIDE:
        # Records without a division of their own: province-wide readers only.
        raise _hidden(type(record).__name__, getattr(record, "id", "?"))


def check_supervised(ledger: Any, principal: Principal, record: Any) -> None:
    """A record as supervision sees it (a contractor: where it works; else check_record)."""
    if isinstance(record, Contractor):
        check_contractor_supervised(ledger, principal, record)
    else:
        check_record(ledger, principal, record)


def _scope_path_record(request: Request, principal: Principal, action: str) -> None:
    ledger = request.app.state.runtime.ledger
    overrides = ACTION_CHECKS.get(action, {})
    for name, kind in PATH_KINDS.items():
        raw = request.path_params.get(name)
        if raw is None:
            continue
        try:
            record_id = uuid.UUID(str(raw))
        except ValueError:
            return  # the route's own validation answers 422
        record = ledger.get(kind, record_id)
        overrides.get(kind, CHECKS[kind])(ledger, principal, record)
    code = request.path_params.get("code")
    if code is not None:
        check_prefix(principal, str(code), field="code")


def names_records(request: Request) -> bool:
    """Whether the path names a record the access check must load (else it does no I/O)."""
    return any(name in request.path_params for name in PATH_KINDS)


async def _checked_on_loop(request: Request, principal: Principal, action: str) -> bool:
    """A command's loads read on the event loop in one statement (``ReliefLedger.
    load_on_loop``: an async connection, no worker thread): the records its path names and
    the caller's sign-in (``api.deps.acting_actor``); the command finds them in the request's
    loads. The path's records are checked there when the check reads nothing else. A read:
    checked on the cached version when that suffices (``_checked_from_cache``). False: not
    checked (the caller checks on a worker thread, a command's records already loaded)."""
    loads = current_loads()
    if loads is None or not loads.writes:
        return _checked_from_cache(request, principal)  # a read: its loads are its own
    ledger = request.app.state.runtime.ledger
    reads = getattr(request.app.state, "loop_reads", None)
    if reads is None or not reads.serves():
        return False
    wanted = []
    for name in PATH_KINDS:
        raw = request.path_params.get(name)
        if raw is None:
            continue
        try:
            wanted.append(uuid.UUID(str(raw)))
        except ValueError:
            return False  # the route's own validation answers 422
    if principal.actor.role in KINDS_OF_ROLE:
        wanted.append(sign_in_id(principal.issuer, principal.actor.id))
    await ledger.load_on_loop(wanted, reads.fetch)
    if principal.role is CONTRACTOR:
        return False  # contractor staff's checks read their contracts too
    try:
        with ledger.loaded_only():
            _scope_path_record(request, principal, action)
    except WouldLoad:
        return False
    return True


def _check_self_only(request: Request, principal: Principal, action: str) -> None:
    """Roles that may take ``action`` on their own record only (after the record is found and
    in scope, so an unknown id is 404 for them as for anyone)."""
    rule = SELF_ONLY.get(action)
    if rule is None:
        return
    parameter, roles = rule
    if principal.role not in roles:
        return
    raw = str(request.path_params.get(parameter))
    try:
        own = str(uuid.UUID(raw)) == principal.actor.id
    except ValueError:
        return  # the route's own validation answers 422
    if not own:
        raise NotPermitted(
            f"a {principal.role.value} may {action.replace('.', ': ')} for themself only",
            field="role",
        )


#: Record kinds whose scope is fixed when they are created: ``check_case`` reads a case's
#: registered village and receiving county, set when the application is received and changed
#: by no later event (tests/unit/test_case.py checks every version of the scenario's cases).
#: Their scope check may read any version of them, the cached one included (no I/O).
SCOPE_FIXED_AT_CREATION: frozenset[type] = frozenset({ReliefCase})


def _checked_from_cache(request: Request, principal: Principal) -> bool:
    """The path's record checked on this process's cached version, with no I/O, when that
    suffices: one record of a kind whose scope never changes, cached, and a caller whose
    check reads nothing else (contractor staff's reads their contracts). False: not checked."""
    if principal.role is CONTRACTOR or "code" in request.path_params:
        return False
    named = [(name, kind) for name, kind in PATH_KINDS.items() if name in request.path_params]
    if len(named) != 1 or named[0][1] not in SCOPE_FIXED_AT_CREATION:
        return False
    name, kind = named[0]
    try:
        record_id = uuid.UUID(str(request.path_params[name]))
    except ValueError:
        return False
    ledger = request.app.state.runtime.ledger
    record = ledger.cached(kind, record_id)
    if record is None:
        return False
    CHECKS[kind](ledger, principal, record)
    return True


def allow(action: str) -> params.Depends:
    """Route dependency: the role may take ``action`` and the path's record is in scope.
    On the event loop when the record's scope is known without I/O (``_checked_from_cache``);
    else the record is loaded on a worker thread (the request's load: ``request_loads``)."""
    if action not in RULES:
        raise KeyError(f"no access rule for {action!r}")

    async def dependency(request: Request, principal: CurrentPrincipal) -> Principal:
        check_action(principal, action)
        if not names_records(request):
            _scope_path_record(request, principal, action)  # no record to load: no I/O
        elif action in ACTION_CHECKS or not await _checked_on_loop(request, principal, action):
            await run_in_threadpool(_scope_path_record, request, principal, action)
        _check_self_only(request, principal, action)
        return principal

    dependency.__name__ = f"allow_{action.replace('.', '_')}"
    setattr(dependency, "action", action)  # noqa: B010  # read by action_of(route)
    marker: params.Depends = Depends(dependency)
    return marker


def action_of(route: Any) -> str | None:
    """The access rule a route declares (None: a public route)."""
    for dependency in getattr(route, "dependencies", ()):
        action = getattr(dependency.dependency, "action", None)
        if action is not None:
            return str(action)
    return None
