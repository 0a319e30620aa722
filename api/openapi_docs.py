"""What the OpenAPI description says beyond the routes' signatures: a request example for every
command, a description for every operation, and typed success responses for the main reads
and commands.

Kept here, beside the routes rather than inside them, so that the description is written in
one place; tests/e2e/test_openapi_docs.py checks that every command has an example the request
model accepts (and the domain's identifier rules too), that every operation is described, and
schemathesis (tests/e2e/test_fuzz_openapi.py) checks real answers against the typed responses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, RootModel
from starlette.routing import BaseRoute

from api.requests import cases as case_bodies
from api.requests import purchasing as purchasing_bodies
from api.requests import standards as standards_bodies
from api.requests import supervision as supervision_bodies

# Identifiers below are valid by the domain's own rules (check characters included).
RESIDENT = "440103198503071234"
CHILD = "440103201005120026"
HOUSEHOLD = "3f1c2a9e-8b7d-4c6a-9e21-5d4b3a2c1f00"
CASE_STAFF = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CONTRACTOR = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
CONTRACT = "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
ALERT = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"

#: Request model → an example body (accepted by the model; see the test).
EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    case_bodies.RegisterHousehold: {
        "registered_division": "440103001001",
        "residence_division": "440103001001",
        "members": [
            {"resident_id": RESIDENT, "name": "陈华", "relation": "head"},
            {"resident_id": CHILD, "name": "陈小明", "relation": "child"},
        ],
    },
    case_bodies.AddMember: {
        "resident_id": CHILD,
        "name": "陈小明",
        "relation": "child",
        "by_birth": True,
    },
    case_bodies.MoveOut: {"resident_id": CHILD, "on": "2026-09-01", "reason": "moved to study"},
    case_bodies.RecordDeath: {"resident_id": RESIDENT, "date_of_death": "2026-10-12"},
    case_bodies.ReceiveApplication: {
        "household_id": HOUSEHOLD,
        "applicant_id": RESIDENT,
        "programme": "dibao",
        "window_division": "440103001",
        "reason": "application at the township window",
    },
    case_bodies.Assign: {"staff_id": CASE_STAFF, "reason": "her township"},
    case_bodies.Investigation: {
        "income_items": [{"source": "casual work", "monthly_amount": "500"}],
        "assets": [],
        "household_size": 2,
        "home_visit": {
            "visited_at": "2026-11-20T10:00:00+08:00",
            "place": "440103001001",
            "visitor_id": "officer-li",
        },
    },
    case_bodies.RecommendationBody: {
        "recommendation": "approve",
        "monthly_amount": "960",
        "reasons": "income below the line",
    },
    case_bodies.Approval: {
        "monthly_amount": "960",
        "start_date": "2026-11-01",
        "reasons": "means test below the dibao line",
    },
    case_bodies.Rejection: {"reasons": "income above the line"},
    case_bodies.Payment: {"period": "2026-11", "amount": "960"},
    case_bodies.Service: {
        "work_item": "care_and_nursing",
        "contract_id": CONTRACT,
        "start": "2026-11-21T09:00:00+08:00",
        "end": "2026-11-21T11:00:00+08:00",
        "place": "440103001001",
    },
    case_bodies.Review: {"outcome": "continue", "notes": "annual review: circumstances unchanged"},
    case_bodies.WithReason: {"reason": "the household did not attend the review"},
    case_bodies.Closure: {"reason_code": "income_above_line", "reason": "new employment"},
    case_bodies.Correction: {
        "corrects_version": 6,
        "changes": {"amount": "900"},
        "reason": "payment keyed as 960, paid 900",
    },
    purchasing_bodies.RegisterContractor: {
        "name": "Harmony Social Work Centre",
        "contractor_type": "social_organisation",
        "credit_code": "52440103MJ00000017",
    },
    purchasing_bodies.BanContractor: {
        "start": "2026-12-01",
        "end": "2029-11-30",
        "reason": "falsified service records",
        "deciding_unit": "440103",
    },
    purchasing_bodies.AwardContract: {
        "contractor_id": CONTRACTOR,
        "purchaser": "440103",
        "work_items": ["household_investigation", "care_and_nursing"],
        "service_area": ["440103"],
        "start": "2026-01-01",
        "end": "2026-12-31",
        "value": "100000.00",
        "funding_source": "special_relief_funds",
    },
    purchasing_bodies.AmendContract: {
        "reason": "care moved to another provider",
        "effective_from": "2026-07-01",
        "work_items": ["household_investigation"],
    },
    purchasing_bodies.RenewContract: {
        "new_end": "2027-12-31",
        "added_value": "100000.00",
        "reason": "a second year",
    },
    purchasing_bodies.RecordExpiry: {"reason": "term ended"},
    purchasing_bodies.Invoice: {
        "invoice_number": "HC-2026-001",
        "period_start": "2026-01-01",
        "period_end": "2026-03-31",
        "amount": "24000.00",
    },
    purchasing_bodies.Evaluation: {
        "period_start": "2026-01-01",
        "period_end": "2026-06-30",
        "score": "86",
    },
    purchasing_bodies.Violation: {
        "kind": "breach",
        "severity": "minor",
        "description": "home visits reported late",
        "evidence": [{"position": 1042}],
    },
    purchasing_bodies.Penalty: {
        "violation": 1,
        "kind": "fine",
        "basis": "contract clause 9",
        "amount": "5000.00",
    },
    purchasing_bodies.Termination: {
        "effective_at": "2026-12-01T00:00:00+08:00",
        "basis": "contract",
        "reason": "repeated serious breaches",
    },
    purchasing_bodies.HireStaff: {
        "name": "李芳",
        "kind": "handling_staff",
        "government_unit": "440103001",
    },
    purchasing_bodies.AssignStaff: {"division": "440103001", "reason": "township office"},
    purchasing_bodies.Training: {
        "course": "means testing",
        "completed_on": "2026-03-15",
        "hours": "16",
    },
    purchasing_bodies.StaffRating: {"period": "2025", "rating": "good"},
    purchasing_bodies.Removal: {"on": "2026-12-31", "reason": "left the service"},
    purchasing_bodies.SignInLink: {"subject": "li.fang@mz.example.gov.cn"},
    supervision_bodies.OpenInvestigation: {
        "subject_kind": "contractor",
        "subject_id": CONTRACTOR,
        "alert_ids": [ALERT],
        "grounds": "care recorded outside the contract",
    },
    supervision_bodies.Note: {"text": "visited the household: no carer ever came"},
    supervision_bodies.Findings: {
        "summary": "care invoiced but never delivered",
        "verdicts": [{"alert_id": ALERT, "verdict": "confirmed"}],
    },
    supervision_bodies.Closure: {
        "outcome": "violation",
        "summary": "falsified service records",
        "violation": {
            "contract_id": CONTRACT,
            "kind": "falsification",
            "severity": "serious",
            "description": "care recorded that was never delivered",
            "penalty": {"kind": "fine", "basis": "contract clause 9", "amount": "5000.00"},
            "ban": {
                "start": "2026-12-01",
                "end": "2029-11-30",
                "reason": "falsification",
                "deciding_unit": "440103",
            },
        },
    },
    standards_bodies.SetStandard: {
        "division": "440106",
        "programme": "dibao",
        "effective_from": "2026-07-01",
        "monthly_amount": "1120",
        "source": "穗民规字〔2026〕3号 (example notice number)",
    },
    supervision_bodies.Interests: {
        "resident_id": RESIDENT,
        "relatives": [{"resident_id": CHILD, "kinship": "child"}],
    },
}

#: Bodies that are not a request model: the staffing band table (a policy document).
POLICY_EXAMPLE: dict[str, Any] = {
    "name": "Guangdong staffing bands, revised (example)",
    "effective_from": "2027-01-01",
    "county": [{"households_from": 0, "minimum": 2}, {"households_from": 3000, "minimum": 4}],
    "township": [{"households_from": 0, "minimum": 2}, {"households_from": 300, "minimum": 4}],
    "village": {"minimum": 1, "review_above": 2},
    "source": "粤民发 notice of 2026-11-20 on handling staff (example)",
}

#: Operations whose route has no docstring: (method, path) → what it does.
DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("POST", "/households"): "Register a household at its hukou village, with its members; "
    "ID numbers are answered masked.",
    ("POST", "/households/{household_id}/members"): "A member joins the household (a birth, "
    "a marriage, a move in).",
    ("POST", "/households/{household_id}/move-outs"): "A member leaves the household.",
    ("POST", "/cases"): "Receive an application at a window (cross-region when the window is "
    "in another county than the household's hukou).",
    ("GET", "/cases/{case_id}"): "The case now; needs X-Purpose, and the read is recorded.",
    ("GET", "/cases/{case_id}/history"): "Every event of the case (position, type, time, "
    "actor, reason, correlation id, masked payload); needs X-Purpose, recorded.",
    ("POST", "/cases/{case_id}/assignment"): "Assign the case to a handling staff member of "
    "its county.",
    ("POST", "/cases/{case_id}/investigation"): "Record the means test with its home visit.",
    ("POST", "/cases/{case_id}/recommendation"): "Recommend approval (with an amount) or "
    "rejection, after the means test.",
    ("POST", "/cases/{case_id}/approval"): "Approve: the county's approver, who did not "
    "investigate or recommend.",
    ("POST", "/cases/{case_id}/rejection"): "Reject: the county's approver.",
    ("POST", "/cases/{case_id}/payments"): "Record one month's payment (government staff).",
    ("POST", "/cases/{case_id}/services"): "Record a delivered service from the catalogue.",
    ("POST", "/cases/{case_id}/reviews"): "Record a periodic review (continue, adjust the "
    "amount, or end).",
    ("POST", "/cases/{case_id}/suspension"): "Suspend payments with a reason.",
    ("POST", "/cases/{case_id}/resumption"): "Resume a suspended case.",
    ("POST", "/cases/{case_id}/closure"): "Close the case with a reason code; the person's "
    "slot in the programme is released.",
    ("POST", "/cases/{case_id}/corrections"): "Correct a payment, service or means test event "
    "by a new event; the original stays in the history.",
    ("POST", "/contractors"): "Register a contractor (social organisation, enterprise or "
    "institution) by its unified social credit code.",
    ("GET", "/contractors/{contractor_id}"): "The register entry: name, type, credit code, "
    "status today and bans.",
    ("POST", "/contractors/{contractor_id}/bans"): "Ban a contractor from new work from start "
    "to end (both days included).",
    ("GET", "/contractors/{contractor_id}/history"): "Every event of the contractor.",
    ("POST", "/contracts"): "Award a service contract (county level or above).",
    ("GET", "/contracts/{contract_id}"): "The contract with the terms in force and its "
    "status today.",
    ("GET", "/contracts/{contract_id}/history"): "Every event of the contract.",
    ("POST", "/contracts/{contract_id}/amendments"): "Amend terms from an effective date.",
    ("POST", "/contracts/{contract_id}/renewals"): "Extend the term, adding value.",
    ("POST", "/contracts/{contract_id}/expiry"): "Record that the term has ended.",
    ("POST", "/contracts/{contract_id}/invoices"): "Record an invoice (cumulative invoices "
    "never exceed the value).",
    ("POST", "/contracts/{contract_id}/evaluations"): "Record a performance evaluation.",
    ("POST", "/contracts/{contract_id}/violations"): "Record a violation citing events as "
    "evidence (supervision).",
    ("POST", "/contracts/{contract_id}/penalties"): "Impose a penalty for a recorded violation.",
    ("POST", "/contracts/{contract_id}/termination"): "Terminate the contract from a moment.",
    ("POST", "/staff"): "Hire a handling staff member, village coordinator or approver "
    "(government, or employed under a contract; approvers by the county bureau only).",
    ("GET", "/staff/{staff_id}"): "The staff member: kind, unit or contract, assignment, "
    "trainings and ratings.",
    ("GET", "/staff/{staff_id}/history"): "Every event of the staff member.",
    ("POST", "/staff/{staff_id}/assignments"): "Assign the staff member to a county, township "
    "or village.",
    ("POST", "/staff/{staff_id}/trainings"): "Record a completed training.",
    ("POST", "/staff/{staff_id}/ratings"): "Record a yearly rating.",
    ("POST", "/staff/{staff_id}/removal"): "Remove the staff member from a day on.",
    ("POST", "/staff/{staff_id}/sign-ins"): "Link a sign-in (token subject) to the staff "
    "record: what it does is recorded with the staff record's id as the actor (409 while "
    "another active record holds it).",
    ("POST", "/staff/{staff_id}/sign-ins/removal"): "Unlink a sign-in from the staff record.",
    ("GET", "/staffing/policies"): "Every recorded version of the staffing band tables, "
    "corrections naming the revision they correct.",
    ("GET", "/caseload"): "Cases by programme and status, rolled up by division code to a "
    "level, within your scope.",
    ("GET", "/caseload/by-staff"): "Cases per assigned handling staff member.",
    ("GET", "/caseload/by-contractor"): "Cases per contractor.",
    ("GET", "/caseload/waiting"): "Applications waiting at each stage before a decision, per "
    "county, with their age.",
    ("GET", "/caseload/cross-region"): "Applications received in one county for another, out "
    "and in, per county.",
    ("GET", "/projections"): "Position, head, lag and last error of every projection.",
    ("GET", "/healthz"): "The process is up (no database check).",
    ("GET", "/investigations/{investigation_id}"): "The investigation with its cited alerts' "
    "current state, notes, findings and outcome.",
    ("POST", "/investigations/{investigation_id}/notes"): "Add a note to an open investigation.",
}


# Typed success responses -------------------------------------------------------------------------


class CaseView(BaseModel):
    """A relief case as answered by its reads and commands (ID numbers masked)."""

    model_config = ConfigDict(extra="allow")

    case_id: str = Field(description="the case's id (UUID)")
    programme: str = Field(description="dibao, tekun or temporary")
    status: str = Field(description="received … approved, suspended, closed or rejected")
    applicant_id: str = Field(description="the applicant's resident ID number, masked")
    household_id: str
    registered_division: str = Field(description="the household's hukou village")
    county: str = Field(description="the county with jurisdiction")
    cross_region: bool
    version: int = Field(description="the record version (ETag)")


class HouseholdView(BaseModel):
    model_config = ConfigDict(extra="allow")

    household_id: str
    registered_division: str
    residence_division: str
    county: str
    size: int
    members: list[dict[str, Any]]
    version: int


class InvestigationView(BaseModel):
    """A misconduct investigation (调查) with its cited alerts."""

    model_config = ConfigDict(extra="allow")

    investigation_id: str
    number: int = Field(description="numbered per subject, from 1")
    subject: dict[str, Any] = Field(description="kind (contractor or staff) and id")
    status: str = Field(description="open or closed")
    grounds: str
    alerts: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    outcome: str | None = Field(description="no_case_to_answer or violation, once closed")
    version: int


class ContractorView(BaseModel):
    """A contractor's register entry as of today."""

    model_config = ConfigDict(extra="allow")

    contractor_id: str
    name: str
    contractor_type: str = Field(description="social_organisation, enterprise or institution")
    credit_code: str = Field(description="unified social credit code (统一社会信用代码)")
    status: str = Field(description="eligible, or banned today")
    bans: list[dict[str, Any]]
    contracts: list[str]
    version: int


class ContractView(BaseModel):
    """A service contract with the terms in force and its status today."""

    model_config = ConfigDict(extra="allow")

    contract_id: str
    contractor_id: str
    purchaser: str = Field(description="the purchasing division (county or above)")
    funding_source: str
    status: str
    terms: dict[str, Any] = Field(description="work items, service area, start, end, value")
    billed: str = Field(description="cumulative invoiced amount (yuan, text)")
    violations: list[dict[str, Any]]
    penalties: list[dict[str, Any]]
    terminated_at: str | None
    version: int


class StaffView(BaseModel):
    """A handling staff member, village coordinator or approver."""

    model_config = ConfigDict(extra="allow")

    staff_id: str
    name: str
    kind: str = Field(description="handling_staff, village_coordinator or approver")
    government_unit: str | None
    contract_id: str | None
    assignment: str | None
    active: bool
    sign_ins: list[dict[str, str]] = Field(
        description="sign-ins (issuer, subject) that act as this staff record"
    )
    version: int


class AlertsPage(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]] = Field(description="alerts, newest first")
    next_page: str | None = Field(description="pass as after= for the next page; null: last")


class Listing(BaseModel):
    """A list answer: its items."""

    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]]


class CaseAsOf(CaseView):
    """The case as it stood at a moment or at a version."""

    as_of: str | None = Field(description="the moment asked for (null when asked by version)")


class PersonView(BaseModel):
    """A person (ID number masked) with the cases that learnt of their death."""

    model_config = ConfigDict(extra="allow")

    person_id: str
    resident_id: str = Field(description="resident ID number, masked")
    name: str
    household_id: str | None
    died_on: str | None
    active_cases: dict[str, str] = Field(description="programme → case id")
    version: int


class Coverage(BaseModel):
    """Whether a contract covers a work item in a division at a moment."""

    model_config = ConfigDict(extra="allow")

    covered: bool
    reason: str | None = Field(description="why not, when not covered")
    field: str | None = Field(default=None, description="the term that excludes it")
    at: str = Field(description="the moment checked")


class StaffingSummary(BaseModel):
    """How many counties and townships are short, and by how much (staffing bands)."""

    model_config = ConfigDict(extra="allow")

    at: str
    policy: str | None = Field(description="the band table in force (null: none loaded)")
    counties: int
    counties_short: int
    county_shortfall: int
    townships: int
    townships_short: int
    township_shortfall: int
    total_shortfall: int
    villages_without_coordinator: int
    villages_for_review: int


class DivisionPosition(BaseModel):
    """A county's or township's staffing at a moment."""

    model_config = ConfigDict(extra="allow")

    division: str
    name: str | None = Field(description="from the division register")
    level: str = Field(description="county or township")
    households: int
    minimum: int = Field(description="handling staff the band table asks for")
    government_staff: int
    contractor_staff: int
    staff: int
    shortfall: int
    at: str
    policy: str | None


class DivisionDetail(DivisionPosition):
    """One division now, since when it is short, and its month-end history."""

    short_since: str | None = Field(description="since when it is short (null: not short)")
    month_ends: list[DivisionPosition] = Field(description="its position at past month ends")


class PolicyLoaded(BaseModel):
    """What loading a band table recorded: an adoption, a correction, or nothing."""

    model_config = ConfigDict(extra="allow")

    outcome: Literal["adopted", "corrected", "unchanged"] = Field(
        description="unchanged: the table for that date is this table already (200)"
    )
    effective_from: str
    name: str
    revision: int = Field(description="1: the adoption; each correction the next")
    corrects: int | None = Field(description="the revision this one replaces (a correction)")
    source: str = Field(description="where the table comes from (the notice)")
    reason: str | None = Field(description="why it was corrected")
    loaded_by: str
    loaded_at: str = Field(description="when the version was recorded")


class PolicyVersion(BaseModel):
    """One recorded version of the band table for an effective date."""

    model_config = ConfigDict(extra="allow")

    effective_from: str
    revision: int = Field(description="1: the adoption; each correction the next")
    name: str
    document: dict[str, Any] = Field(description="the table, as POST /staffing/policies takes it")
    source: str = Field(description="where the table comes from (the notice)")
    corrects: int | None = Field(description="the revision this one replaces (a correction)")
    reason: str | None = Field(description="why it was corrected")
    corrected_by: int | None = Field(description="the revision that replaces this one")
    current: bool = Field(description="the version in force for its date as known")
    loaded_by: str
    loaded_by_role: str
    loaded_at: str = Field(description="when the version was recorded")
    position: int = Field(description="its event's position in the log")


class PolicyVersions(BaseModel):
    """Every recorded version of the band tables, by effective date and revision."""

    model_config = ConfigDict(extra="allow")

    known_at: str | None = Field(description="as the ledger knew them then (null: now)")
    items: list[PolicyVersion]


class VerificationReport(BaseModel):
    """A finished verification of chain, seals and checkpoints (``relief audit verify``)."""

    model_config = ConfigDict(extra="allow")

    job: str = Field(description="the verification job's id")
    ok: bool = Field(description="intact, and within the checkpoint limits")
    intact: bool
    first_break: dict[str, Any] | None = Field(description="position and kind of the break")
    intact_up_to: int
    head: int
    checked: int
    signed_up_to: int
    unsigned_events: int
    checkpoints: int
    newest_checkpoint: dict[str, Any] | None
    checkpoint_age_s: float | None
    seals_checked: bool
    seals_opened: int
    legacy_until: int
    legacy_events: int
    unopened: list[dict[str, Any]]
    over_limits: list[str]
    trusted_key: str | None = Field(description="the public key trusted (hex), if any")


class VerificationJob(BaseModel):
    """A verification job still running (202), or failed."""

    model_config = ConfigDict(extra="allow")

    job: str
    status: str = Field(description="running, done or failed")
    requested_by: str
    started_at: str
    finished_at: str | None
    report: dict[str, Any] | None
    error: str | None


class VerificationAnswer(RootModel[VerificationReport | VerificationJob]):
    """The report when the verification has ended, else the job's status."""


class AggregateAsOf(BaseModel):
    """Any record as it stood at a moment or version."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(description="ReliefCase, Contract, Contractor, Staff, Household …")
    as_of: str | None
    version: int
    state: dict[str, Any] = Field(description="the record's summary at that version")


class PublicKey(BaseModel):
    model_config = ConfigDict(extra="allow")

    algorithm: str = Field(description="Ed25519")
    public_key: str = Field(description="raw public key, hex")


class AlertView(BaseModel):
    """A red-flag alert with its review (resident ID numbers in free text masked)."""

    model_config = ConfigDict(extra="allow")

    alert_id: str
    rule: str
    severity: str
    subject_kind: str
    subject_id: str
    contractor_id: str | None
    county: str | None
    reason: str
    evidence: list[int] = Field(description="global positions of the events")
    first_seen: str
    last_seen: str
    status: str
    review_status: str = Field(description="unreviewed, or the reviewer's verdict")
    review_reason: str | None
    investigation_id: str | None
    investigation_ids: list[str]
    reviewed_position: int | None
    reviewed_at: str | None
    reviewed_by: str | None
    new_evidence_since_review: bool


class AlertDetail(AlertView):
    investigations: list[dict[str, Any]] = Field(description="investigations citing it")


class Dossier(BaseModel):
    """Everything supervision holds on a contractor, on one timeline."""

    model_config = ConfigDict(extra="allow")

    contractor: dict[str, Any] = Field(description="the register entry")
    contracts: list[dict[str, Any]]
    alerts: list[AlertView]
    investigations: list[dict[str, Any]]
    services: dict[str, Any] = Field(description="total_recorded and shown")
    sanctions: dict[str, Any] = Field(description="violations, penalties, terminations, bans")
    timeline: list[dict[str, Any]] = Field(description="in log order, newest kept")
    truncated: bool


class ProjectionStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    generation: int
    feed: str | None
    position: int
    head: int
    lag: int
    last_error: str | None
    last_error_position: int | None


class Projections(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[ProjectionStatus]


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = Field(description="ok")


class Readiness(BaseModel):
    model_config = ConfigDict(extra="allow")

    ready: bool
    checks: dict[str, str] = Field(description="check → ok, or why not")


CASE_OPERATIONS = [
    ("POST", "/cases"),
    ("GET", "/cases/{case_id}"),
    *[
        ("POST", f"/cases/{{case_id}}/{command}")
        for command in (
            "assignment",
            "investigation",
            "recommendation",
            "approval",
            "rejection",
            "payments",
            "services",
            "reviews",
            "suspension",
            "resumption",
            "closure",
            "corrections",
        )
    ],
]

#: (method, path) → the model of its success answer.
RESPONSES: dict[tuple[str, str], type[BaseModel]] = {
    **dict.fromkeys(CASE_OPERATIONS, CaseView),
    ("POST", "/households"): HouseholdView,
    ("GET", "/households/{household_id}"): HouseholdView,
    ("POST", "/households/{household_id}/members"): HouseholdView,
    ("POST", "/households/{household_id}/move-outs"): HouseholdView,
    ("POST", "/investigations"): InvestigationView,
    ("GET", "/investigations/{investigation_id}"): InvestigationView,
    ("POST", "/investigations/{investigation_id}/notes"): InvestigationView,
    ("POST", "/investigations/{investigation_id}/findings"): InvestigationView,
    ("POST", "/investigations/{investigation_id}/closure"): InvestigationView,
    **dict.fromkeys(
        [
            ("POST", "/contractors"),
            ("GET", "/contractors/{contractor_id}"),
            ("POST", "/contractors/{contractor_id}/bans"),
        ],
        ContractorView,
    ),
    **dict.fromkeys(
        [
            ("POST", "/contracts"),
            ("GET", "/contracts/{contract_id}"),
            *[
                ("POST", f"/contracts/{{contract_id}}/{command}")
                for command in (
                    "amendments",
                    "renewals",
                    "expiry",
                    "invoices",
                    "evaluations",
                    "violations",
                    "penalties",
                    "termination",
                )
            ],
        ],
        ContractView,
    ),
    **dict.fromkeys(
        [
            ("POST", "/staff"),
            ("GET", "/staff/{staff_id}"),
            *[
                ("POST", f"/staff/{{staff_id}}/{command}")
                for command in (
                    "assignments",
                    "trainings",
                    "ratings",
                    "removal",
                    "interests",
                    "sign-ins",
                    "sign-ins/removal",
                )
            ],
        ],
        StaffView,
    ),
    ("GET", "/contractors/{contractor_id}/history"): Listing,
    ("GET", "/contracts/{contract_id}/history"): Listing,
    ("GET", "/staff/{staff_id}/history"): Listing,
    ("GET", "/investigations/{investigation_id}/history"): Listing,
    ("GET", "/alerts"): AlertsPage,
    ("GET", "/alerts/rules"): Listing,
    ("GET", "/cases/{case_id}/history"): Listing,
    ("GET", "/cases/{case_id}/reads"): Listing,
    ("GET", "/cases/{case_id}/decision-view"): Listing,
    ("GET", "/audit/checkpoints"): Listing,
    ("GET", "/caseload/by-staff"): Listing,
    ("GET", "/caseload/by-contractor"): Listing,
    ("GET", "/caseload/waiting"): Listing,
    ("GET", "/caseload/cross-region"): Listing,
    ("GET", "/staffing/policies"): PolicyVersions,
    ("GET", "/staffing"): Listing,
    ("GET", "/staffing/villages"): Listing,
    ("POST", "/deaths"): PersonView,
    ("GET", "/contracts/{contract_id}/coverage"): Coverage,
    ("GET", "/staffing/summary"): StaffingSummary,
    ("GET", "/staffing/divisions/{code}"): DivisionDetail,
    ("POST", "/staffing/policies"): PolicyLoaded,
    ("GET", "/audit/verify"): VerificationAnswer,
    ("GET", "/audit/verify/jobs/{job_id}"): VerificationAnswer,
    ("GET", "/cases/{case_id}/as-of"): CaseAsOf,
    ("GET", "/audit/public-key"): PublicKey,
    ("GET", "/audit/aggregates/{aggregate_id}/as-of"): AggregateAsOf,
    ("GET", "/projections"): Projections,
    ("GET", "/healthz"): Health,
    ("GET", "/readyz"): Readiness,
    ("GET", "/alerts/{alert_id}"): AlertDetail,
    ("GET", "/contractors/{contractor_id}/dossier"): Dossier,
}

#: Success answers that are not JSON documents to type (method, path) → why; every other
#: success answer is typed (tests/e2e/test_openapi_docs.py, tools/untyped_answers.py).
UNTYPED: dict[tuple[str, str], str] = {
    ("GET", "/metrics"): "Prometheus text exposition format, not JSON",
    ("GET", "/audit/bundles/{aggregate_id}"): "a file download (Content-Disposition: "
    "attachment): the signed evidence bundle, checked offline by relief audit verify-bundle",
}


def _schema(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema, registered under components (its $defs hoisted there)."""
    body = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in body.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, body)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(routes: Iterable[BaseRoute], schema: dict[str, Any]) -> None:
    """Add the examples, descriptions and typed responses to a built OpenAPI document of the
    application whose ``routes`` (those of its routers) are given."""
    bodies: dict[tuple[str, str], Any] = {}
    for route in routes:
        if isinstance(route, APIRoute) and route.body_field is not None:
            for method in route.methods or ():
                bodies[(method, route.path)] = route.body_field.field_info.annotation
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            if not operation.get("description") and key in DESCRIPTIONS:
                operation["description"] = DESCRIPTIONS[key]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                model = bodies.get(key)
                if model in EXAMPLES:
                    body["example"] = EXAMPLES[model]
                elif key == ("POST", "/staffing/policies"):
                    body["example"] = POLICY_EXAMPLE
            answer = RESPONSES.get(key)
            if answer is not None:
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {}).get("application/json")
                    if status.startswith("2") and content is not None:
                        content["schema"] = _schema(answer, schema)


def untyped_answers(schema: dict[str, Any]) -> list[str]:
    """Success (2xx) answers of a built OpenAPI document whose schema is missing, ``{}`` or an
    object without properties ("METHOD path status"), the ``UNTYPED`` ones excepted."""
    components = schema.get("components", {}).get("schemas", {})

    def typed(body: dict[str, Any]) -> bool:
        if "$ref" in body:
            body = components.get(body["$ref"].rsplit("/", 1)[1], {})
        if "anyOf" in body or "oneOf" in body:
            choices = body.get("anyOf", []) + body.get("oneOf", [])
            return bool(choices) and all(typed(choice) for choice in choices)
        if body.get("type") == "array":
            return typed(body.get("items", {}))
        return bool(body.get("properties"))

    found = []
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            if (method.upper(), path) in UNTYPED:
                continue
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                body = response.get("content", {}).get("application/json")
                if body is None or not typed(body.get("schema", {})):
                    found.append(f"{method.upper()} {path} {status}")
    return found
