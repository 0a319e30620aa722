"""Bulk import of a legacy system's relief cases (JSON lines), row by row, through the ledger.

One line is one case with its household, means test, decision, payments and closure. Each line
is checked against the format (unknown fields refused), then written through the ledger's own
commands inside one unit of a ``BulkLedger``: a line the domain refuses anywhere leaves nothing
behind and is reported with its line number, the field at fault and the rule; the other lines
are imported. The format (``LegacyCase``) is documented in the README.

Imported events carry the legacy actors (the clerk, investigator and approver named in the
line, acting for the case's county) and the reason ``legacy import <ref>``, so the history
tells an auditor where each record came from. Every decision-maker is a staff record: the
investigator and the approver named in a line act as the staff record of that name in the
county's bureau, hired (and assigned to the county) the first time the import meets them, their
legacy name kept as the actor's subject.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.case import HomeVisit, IncomeItem, MeansTest
from domain.clock import SetClock
from domain.commands.cases import (
    ApproveCase,
    CloseCase,
    InvestigateCase,
    ReceiveApplication,
    RecommendCase,
    RecordPayment,
    RegisterHousehold,
    RejectCase,
)
from domain.commands.purchasing import AssignStaff, HireStaff
from domain.errors import DomainError
from domain.household import HouseholdMember
from domain.identifiers import parse_division_code
from domain.provenance import Actor, Provenance, Role
from infra.runtime import Bulk
from services import Services
from services.store import Store

Text = Annotated[str, Field(min_length=1, max_length=200)]


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, str_strip_whitespace=True)


class LegacyMember(Row):
    resident_id: Annotated[str, Field(min_length=18, max_length=18)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    relation: Annotated[str, Field(max_length=20)]


class LegacyHousehold(Row):
    registered_division: Annotated[str, Field(min_length=12, max_length=12)]
    residence_division: Annotated[str, Field(min_length=12, max_length=12)]
    members: Annotated[list[LegacyMember], Field(min_length=1, max_length=50)]


class LegacyMeansTest(Row):
    investigated_on: dt.date
    investigator: Text
    monthly_income: Decimal
    household_size: Annotated[int, Field(ge=1, le=50)]


class LegacyDecision(Row):
    outcome: Literal["approved", "rejected"]
    decided_on: dt.date
    approver: Text
    monthly_amount: Decimal | None = None
    start_date: dt.date | None = None
    reasons: Annotated[str, Field(min_length=1, max_length=2000)]


class LegacyPayment(Row):
    period: Annotated[str, Field(pattern=r"^\d{4}-\d{2}$")]
    amount: Decimal
    paid_on: dt.date


class LegacyClosure(Row):
    closed_on: dt.date
    reason_code: Annotated[str, Field(max_length=40)]


class LegacyCase(Row):
    """One line of the import file."""

    ref: Text  # the legacy system's own case number, kept in every event's reason
    programme: Literal["dibao", "tekun", "temporary"]
    window_division: Annotated[str, Field(min_length=9, max_length=12)]
    received_on: dt.date
    clerk: Text
    household: LegacyHousehold
    means_test: LegacyMeansTest | None = None
    decision: LegacyDecision | None = None
    payments: Annotated[list[LegacyPayment], Field(max_length=600)] = []
    closure: LegacyClosure | None = None


@dataclass
class Reject:
    line: int
    ref: str | None
    field: str | None
    rule: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "ref": self.ref,
            "field": self.field,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    events: int = 0
    rejects: list[Reject] = field(default_factory=list)


class LegacyImporter:
    """Writes legacy cases through the application services of a bulk store, each step on
    the clock set to the day the line gives for it."""

    def __init__(self, services: Services, clock: SetClock, store: Store) -> None:
        self.services, self.clock, self.store = services, clock, store
        #: (county, legacy name, role) → the staff record it acts as
        self.roster: dict[tuple[str, str, Role], UUID] = {}

    def staff(self, county: str, name: str, role: Role, reason: str) -> Provenance:
        """The legacy decision-maker ``name`` of ``county`` as a staff record of the county's
        bureau (hired the first time; again if the line that hired it was refused)."""
        key = (county, name, role)
        staff_id = self.roster.get(key)
        if staff_id is None or not self.store.exists(staff_id):
            by = Provenance(Actor("legacy-import", Role.HANDLING_STAFF, county), reason=reason)
            purchasing = self.services.purchasing
            staff = purchasing.hire_staff(
                HireStaff(
                    name=name[:100],
                    kind="approver" if role is Role.APPROVER else "handling_staff",
                    government_unit=county,
                    provenance=by,
                )
            )
            purchasing.assign_staff(AssignStaff(staff_id=staff.id, division=county, provenance=by))
            staff_id = self.roster[key] = staff.id
        return Provenance(Actor(str(staff_id), role, county, subject=name), reason=reason)

    def import_case(self, row: LegacyCase) -> None:
        """Write one legacy case through the application's commands (inside the caller's
        unit)."""
        cases, clock = self.services.cases, self.clock
        county = parse_division_code(row.household.registered_division, field="household").county
        reason = f"legacy import {row.ref}"

        def by(actor_id: str, role: Role) -> Provenance:
            return Provenance(Actor(actor_id, role, county.code), reason=reason)

        clerk = by(row.clerk, Role.INTAKE_CLERK)
        clock.at(row.received_on, 9)
        home = cases.register_household(
            RegisterHousehold(
                registered_division=row.household.registered_division,
                residence_division=row.household.residence_division,
                members=tuple(
                    HouseholdMember(m.resident_id, m.name, m.relation)
                    for m in row.household.members
                ),
                provenance=clerk,
            )
        )
        case = cases.receive_application(
            ReceiveApplication(
                household_id=home.id,
                applicant_id=row.household.members[0].resident_id,
                programme=row.programme,
                window_division=row.window_division,
                provenance=clerk,
            )
        )
        if row.means_test is None:
            if row.decision is not None:
                raise _Refused("means_test", "a decision needs the means test it rests on")
            return
        test = row.means_test
        investigator = self.staff(county.code, test.investigator, Role.HANDLING_STAFF, reason)
        visited = clock.at(test.investigated_on, 11)
        cases.investigate_case(
            InvestigateCase(
                case_id=case.id,
                means_test=MeansTest(
                    income_items=(IncomeItem("declared income", test.monthly_income),),
                    assets=(),
                    household_size=test.household_size,
                    home_visit=HomeVisit(
                        visited - dt.timedelta(hours=1),
                        home.registered_division.code,
                        test.investigator,
                    ),
                ),
                provenance=investigator,
            )
        )
        decision = row.decision
        if decision is None:
            return
        approve = decision.outcome == "approved"
        clock.at(decision.decided_on, 9)
        cases.recommend_case(
            RecommendCase(
                case_id=case.id,
                recommendation="approve" if approve else "reject",
                reasons=decision.reasons,
                monthly_amount=decision.monthly_amount if approve else None,
                provenance=investigator,
            )
        )
        clock.at(decision.decided_on, 15)
        approver = self.staff(county.code, decision.approver, Role.APPROVER, reason)
        if not approve:
            cases.reject_case(
                RejectCase(case_id=case.id, reasons=decision.reasons, provenance=approver)
            )
            return
        if decision.start_date is None or decision.monthly_amount is None:
            raise _Refused("decision", "an approval needs monthly_amount and start_date")
        cases.approve_case(
            ApproveCase(
                case_id=case.id,
                monthly_amount=decision.monthly_amount,
                start_date=decision.start_date,
                reasons=decision.reasons,
                provenance=approver,
            )
        )
        for n, payment in enumerate(row.payments):
            clock.at(payment.paid_on, 10)
            try:
                cases.record_payment(
                    RecordPayment(
                        case_id=case.id,
                        period=payment.period,
                        amount=payment.amount,
                        provenance=approver,
                    )
                )
            except DomainError as error:
                error.field = f"payments[{n}].{error.field or 'period'}"
                raise
        if row.closure is not None:
            clock.at(row.closure.closed_on, 16)
            cases.close_case(
                CloseCase(case_id=case.id, reason_code=row.closure.reason_code, provenance=approver)
            )


class _Refused(DomainError):
    """The line is inconsistent in itself."""

    rule = "inconsistent-record"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message, field=field_name)


def read_lines(lines: Iterable[str]) -> Iterator[tuple[int, LegacyCase | Reject]]:
    """Parse each line: a case, or the reason it cannot be one."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            yield number, Reject(number, None, None, "malformed-json", str(error))
            continue
        ref = raw.get("ref") if isinstance(raw, dict) else None
        try:
            yield number, LegacyCase.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            yield number, Reject(number, ref, where or None, "invalid-format", first["msg"])


def import_lines(
    bulk: Bulk,
    lines: Iterable[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import every line, each whole or not at all, on a clock set by each line's dates."""
    report = ImportReport()
    ledger = bulk.store
    importer = LegacyImporter(bulk.services, bulk.clock, bulk.store)
    before = ledger.events_written + ledger.kept_events
    with ledger.collector_per_transaction(), ledger.writer_turns():
        for number, parsed in read_lines(lines):
            report.read += 1
            if isinstance(parsed, Reject):
                report.rejects.append(parsed)
            else:
                try:
                    with ledger.unit():
                        importer.import_case(parsed)
                except DomainError as error:
                    report.rejects.append(
                        Reject(number, parsed.ref, error.field, error.rule, error.message)
                    )
                else:
                    report.imported += 1
            if progress is not None:
                progress(report.read, len(report.rejects))
        ledger.flush()
    report.events = ledger.events_written - before
    return report
