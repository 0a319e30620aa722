"""The contractor register (承接主体): who may take purchased relief work, and bans."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import Enum

from eventsourcing.domain import Aggregate, event

from domain.credit_code import parse_credit_code
from domain.errors import (
    BanTerms,
    ContractorBanned,
    ContractorTypeMismatch,
    NotEligible,
    SanctioningAuthorityOnly,
)
from domain.identifiers import DivisionLevel, parse_division_code
from domain.provenance import Provenance, Role
from domain.values import check_term, parse_enum, require_text

JsonDict = dict[str, object]

#: Contractors are identified by their credit code: one register entry per organisation.
CONTRACTOR_NAMESPACE = uuid.UUID("5d0c8f4e-8a4b-4b8e-9a57-2f1c3c6f1a01")


def contractor_id_for(credit_code: str) -> uuid.UUID:
    return uuid.uuid5(CONTRACTOR_NAMESPACE, credit_code)


class ContractorType(Enum):
    SOCIAL_ORGANISATION = "social_organisation"  # 社会组织, registered with civil affairs
    SOCIAL_ORGANISATION_EXEMPT = "social_organisation_exempt"  # 经国务院批准免予登记
    PUBLIC_INSTITUTION = "public_institution"  # 事业单位
    ENTERPRISE = "enterprise"  # 企业、机构 registered with the market regulator or sector


class InstitutionClass(Enum):
    """Public-institution classes of the reform (事业单位分类)."""

    ADMINISTRATIVE = "administrative"  # 承担行政职能类
    PUBLIC_WELFARE_I = "public_welfare_i"  # 公益一类
    PUBLIC_WELFARE_II = "public_welfare_ii"  # 公益二类: eligible
    PRODUCTION_BUSINESS = "production_business"  # 生产经营类: eligible


ELIGIBLE_INSTITUTION_CLASSES = frozenset(
    {InstitutionClass.PUBLIC_WELFARE_II, InstitutionClass.PRODUCTION_BUSINESS}
)

#: Credit-code categories each declared type may carry (interpretation stated in the README).
CATEGORIES_BY_TYPE: dict[ContractorType, frozenset[str]] = {
    ContractorType.SOCIAL_ORGANISATION: frozenset({"51", "52", "53"}),
    ContractorType.SOCIAL_ORGANISATION_EXEMPT: frozenset({"13", "19", "Y1"}),
    ContractorType.PUBLIC_INSTITUTION: frozenset({"12"}),
    ContractorType.ENTERPRISE: frozenset({"91", "92", "93", "Y1"}),
}


@dataclass(frozen=True)
class Ban:
    """A ban from government purchase of relief services (禁止参与), both days included."""

    start: dt.date
    end: dt.date
    reason: str
    deciding_unit: str

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class Contractor(Aggregate):
    @classmethod
    def register(
        cls,
        *,
        name: str,
        contractor_type: str,
        credit_code: str,
        institution_class: str | None = None,
        provenance: Provenance,
    ) -> Contractor:
        name = require_text(name, field="name", max_length=200)
        kind = parse_enum(ContractorType, contractor_type, "contractor_type")
        code = parse_credit_code(credit_code, field="credit_code")
        if code.category == "11":
            raise NotEligible(
                "a government organ (credit code category 11) cannot be a contractor",
                field="credit_code",
            )
        allowed = CATEGORIES_BY_TYPE[kind]
        if code.category not in allowed:
            raise ContractorTypeMismatch(
                f"credit code category {code.category} does not agree with the declared type "
                f"{kind.value} (expected {', '.join(sorted(allowed))})",
                field="credit_code",
            )
        klass: InstitutionClass | None = None
        if kind is ContractorType.PUBLIC_INSTITUTION:
            if not institution_class:
                raise ContractorTypeMismatch(
                    "a public institution must state its class", field="institution_class"
                )
            klass = parse_enum(InstitutionClass, institution_class, "institution_class")
            if klass not in ELIGIBLE_INSTITUTION_CLASSES:
                raise NotEligible(
                    f"a public institution of class {klass.value} may not take purchased relief "
                    "work; only public-welfare class II or production/business type may",
                    field="institution_class",
                )
        elif institution_class:
            raise ContractorTypeMismatch(
                "only a public institution has an institution class", field="institution_class"
            )
        return cls(
            name=name,
            contractor_type=kind.value,
            credit_code=code.code,
            institution_class=klass.value if klass else None,
            provenance=provenance,
        )

    @staticmethod
    def create_id(credit_code: str, **_: object) -> uuid.UUID:
        return contractor_id_for(credit_code)

    class Registered(Aggregate.Created):
        name: str
        contractor_type: str
        credit_code: str
        institution_class: str | None
        provenance: Provenance

    @event(Registered)
    def __init__(
        self,
        name: str,
        contractor_type: str,
        credit_code: str,
        institution_class: str | None,
        provenance: Provenance,
    ) -> None:
        self.name = name
        self.contractor_type = ContractorType(contractor_type)
        self.credit_code = credit_code
        self.institution_class = InstitutionClass(institution_class) if institution_class else None
        self.bans: list[Ban] = []
        self.contracts: list[uuid.UUID] = []

    # Bans ------------------------------------------------------------------------------------

    def ban(
        self,
        *,
        start: dt.date,
        end: dt.date,
        reason: str,
        deciding_unit: str,
        provenance: Provenance,
    ) -> None:
        check_term(start, end, field="end")
        reason = require_text(reason, field="reason")
        unit = parse_division_code(deciding_unit, field="deciding_unit")
        if unit.level.value > DivisionLevel.COUNTY.value:
            raise BanTerms(
                "a ban is decided by a unit at county level or above", field="deciding_unit"
            )
        if provenance.actor.role not in (Role.SUPERVISOR, Role.APPROVER):
            raise SanctioningAuthorityOnly(
                "only supervision or an approving authority may ban a contractor",
                field="actor.role",
            )
        self.trigger_event(
            self.Banned,
            start=start,
            end=end,
            reason=reason,
            deciding_unit=unit.code,
            provenance=provenance,
        )

    class Banned(Aggregate.Event):
        start: dt.date
        end: dt.date
        reason: str
        deciding_unit: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contractor)
            aggregate.bans.append(Ban(self.start, self.end, self.reason, self.deciding_unit))

    def ban_on(self, day: dt.date) -> Ban | None:
        return next((ban for ban in self.bans if ban.covers(day)), None)

    def check_not_banned(self, day: dt.date, *, doing: str) -> None:
        ban = self.ban_on(day)
        if ban is not None:
            raise ContractorBanned(
                f"contractor {self.name} is banned from {ban.start} to {ban.end} "
                f"({ban.reason}); it cannot be {doing} on {day}",
                field="contractor_id",
            )

    # Work recorded on the contractor, so that a ban and new work race on one version --------

    def take_on_work(
        self, *, contract_id: uuid.UUID, on: dt.date, what: str, provenance: Provenance
    ) -> None:
        """Record that a contract gives this contractor (more) work from ``on``.

        Saved in the same transaction as the contract's event: a concurrent ban changes this
        aggregate too, so optimistic concurrency lets only one of the two succeed.
        """
        self.check_not_banned(on, doing=what)
        self.trigger_event(
            self.WorkTakenOn, contract_id=contract_id, on=on, what=what, provenance=provenance
        )

    class WorkTakenOn(Aggregate.Event):
        contract_id: uuid.UUID
        on: dt.date
        what: str
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Contractor)
            if self.contract_id not in aggregate.contracts:
                aggregate.contracts.append(self.contract_id)

    def summary(self, today: dt.date) -> JsonDict:
        ban = self.ban_on(today)
        return {
            "contractor_id": str(self.id),
            "name": self.name,
            "contractor_type": self.contractor_type.value,
            "institution_class": self.institution_class.value if self.institution_class else None,
            "credit_code": self.credit_code,
            "status": "banned" if ban else "eligible",
            "bans": [
                {
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                    "reason": b.reason,
                    "deciding_unit": b.deciding_unit,
                }
                for b in self.bans
            ],
            "contracts": [str(c) for c in self.contracts],
            "version": self.version,
        }
