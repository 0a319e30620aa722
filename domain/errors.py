"""Named refusals. Each carries the input field at fault so an adapter can point at it.

Two levels. The *problem types* (``InvalidValue``, ``InvalidState``, ``NotPermitted`` …) are
what clients see: each has a stable ``rule`` (the problem type ``/problems/<rule>``) and an HTTP
status chosen by the adapter. Below them, one exception per business rule: its type says which
rule refused (``PaymentAboveAmountInForce``, ``SupervisorsDoNotOperateCases`` …), it inherits
the problem type's ``rule`` and title, so clients see the same problem as before, and code and
tests can tell the rules apart. Malformed input (a missing reason, a month that is no month)
stays a plain ``InvalidValue``.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused a command. Nothing was recorded."""

    #: Short stable identifier of the problem type, used in problem types and logs.
    rule: str = "domain-rule"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @classmethod
    def problem_title(cls) -> str:
        """The title of the problem type: the first docstring line of the class that names the
        rule, so every named rule under a problem type shares its type's title."""
        for klass in cls.__mro__:
            rule = vars(klass).get("rule")
            if rule is not None:
                return (klass.__doc__ or str(rule)).strip().splitlines()[0]
        return cls.rule


# Problem types ------------------------------------------------------------------------------


class InvalidIdentifier(DomainError):
    """An identifier (division code, resident ID number, credit code) is malformed."""

    rule = "invalid-identifier"

    def __init__(self, message: str, *, field: str | None = None, fault: str = "format") -> None:
        super().__init__(message, field=field)
        self.fault = fault


class InvalidValue(DomainError):
    """A value is outside what the domain accepts (unknown programme, empty reason...)."""

    rule = "invalid-value"


class CaseAlreadyClosed(DomainError):
    """A closed relief case accepts no further changes; corrections are new events."""

    rule = "case-already-closed"


class NotFound(DomainError):
    """No record of that kind with that identifier."""

    rule = "not-found"


class VersionMismatch(DomainError):
    """The caller's expected version is not the record's current version."""

    rule = "version-mismatch"


class NotPermitted(DomainError):
    """The acting person's role or organisation may not do this."""

    rule = "not-permitted"


class NotEligible(DomainError):
    """The contractor is not of a kind that may take government-purchased relief work."""

    rule = "contractor-not-eligible"


class ContractorBanned(DomainError):
    """The contractor is banned from government purchase of relief services at that date."""

    rule = "contractor-banned"


class NotPurchasable(DomainError):
    """A function the government must perform itself was put into a service contract."""

    rule = "not-purchasable"


class InvalidPurchaser(DomainError):
    """Only a people's government at county level or above may purchase relief services."""

    rule = "invalid-purchaser"


class BillingAboveValue(DomainError):
    """Cumulative invoices may never exceed the contract value."""

    rule = "billing-above-value"


class ContractClosed(DomainError):
    """The contract is terminated or expired and takes no further work."""

    rule = "contract-closed"


class OutsideContract(DomainError):
    """The work is not covered by the contract (item, area, term, termination or ban)."""

    rule = "outside-contract"


class LateEntryWindowPassed(OutsideContract):
    """Work done under a contract is recorded more than the late-entry window after the
    contract's last day: only a supervisor's correction can add it now."""


class InvalidState(DomainError):
    """The record is not in a state that allows this command."""

    rule = "invalid-state"


class Duplicate(DomainError):
    """The same thing was recorded already."""

    rule = "duplicate"


class DuplicateActiveCase(DomainError):
    """The person already has an active application or case in this programme."""

    rule = "duplicate-active-case"

    def __init__(self, message: str, *, existing_case_id: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.existing_case_id = existing_case_id


class SeparationOfDuties(DomainError):
    """The person who investigated a case may not decide it."""

    rule = "separation-of-duties"


class BeneficiaryDeceased(DomainError):
    """Nothing is paid or delivered for a time after the beneficiary's death."""

    rule = "beneficiary-deceased"


# Who may act (403) --------------------------------------------------------------------------


class GovernmentWorkOnly(NotPermitted):
    """Government work (cases, payments, contracts, staff) is not for contractor staff nor for
    the read-only roles (auditor, integration)."""


class SupervisorsDoNotOperateCases(NotPermitted):
    """Supervision oversees relief cases; it does not receive, handle, pay or decide them."""


class DecidedByTheCountysApprover(NotPermitted):
    """Eligibility decisions are an approver's of the county with jurisdiction."""


class InvestigatedByHandlingStaff(NotPermitted):
    """Investigations and recommendations are by handling staff (or contractor staff under a
    contract)."""


class PaidByHandlingStaff(NotPermitted):
    """Benefits are paid by handling staff or the approver."""


class SupervisionOnly(NotPermitted):
    """Investigations and violations are supervision's work."""


class SanctioningAuthorityOnly(NotPermitted):
    """Penalties and bans are imposed by supervision or an approving authority."""


class NoSelfAssessment(NotPermitted):
    """No one evaluates or rates their own performance."""


class PolicyAuthorityOnly(NotPermitted):
    """Policy (staffing band tables) is loaded by an approving or supervising authority."""


class BandTableAdoptedAlready(InvalidState):
    """A band table is adopted once per effective date; a changed table for that date is
    recorded as a correction of the one adopted."""


class NoBandTableToCorrect(InvalidState):
    """A correction replaces the band table adopted for the same effective date."""


class CorrectionChangesNothing(InvalidValue):
    """A correction of a band table changes the table (loading the same table is no event)."""


# Relief cases -------------------------------------------------------------------------------


class CaseStatusForbids(InvalidState):
    """The case's status does not take this command (e.g. a payment before approval)."""


class StaffNotActive(InvalidState):
    """A case goes to active staff only: not removed, assigned, its paying contract running."""


class AssignedOutsideCounty(InvalidValue):
    """A case is assigned to handling staff assigned within its county."""


class ApplicationWindowLevel(InvalidValue):
    """Applications are received at a township or village window."""


class ContractNamedByContractorStaffOnly(InvalidValue):
    """Contractor staff work under the contract they name; government staff under none."""


class HomeVisitInFuture(InvalidValue):
    """A home visit is recorded once it took place."""


class AmountOnlyWithApproval(InvalidValue):
    """Only an approval (recommended or decided) or an adjustment carries a monthly amount."""


class PaymentInAdvance(InvalidValue):
    """Nothing is paid for a month that has not begun."""


class PaymentBeforeStart(InvalidValue):
    """Nothing is paid for a month ending before the approved start."""


class PaymentAboveAmountInForce(InvalidValue):
    """A payment (or its correction) never exceeds the monthly amount in force."""


class PaymentDuringSuspension(InvalidState):
    """Nothing is paid while a case is suspended, nor for a month begun in a suspension."""


class PeriodPaidAlready(Duplicate):
    """A month is paid once; temporary assistance is paid once."""


class NotAService(InvalidValue):
    """Services are items of the service catalogue, not transactional work."""


class ServiceTimes(InvalidValue):
    """A service ends after it starts, within 24 hours, and is recorded once delivered."""


class AdjustmentTerms(InvalidValue):
    """An adjustment of the monthly amount takes effect on a date, never before the approved
    start."""


class NothingToCorrect(InvalidValue):
    """Corrections name a payment, service or investigation event of the case, and change what
    that kind of record may change."""


class VoidedPaymentIsFinal(InvalidState):
    """A voided payment stays void: the month is paid again by a new payment."""


# Households and people ----------------------------------------------------------------------


class HouseholdComposition(InvalidValue):
    """A household has members, each once, and exactly one head."""


class MembershipForbids(InvalidState):
    """Membership changes follow the members' state (present, moved out, deceased; the head
    moves out last)."""


class DeathRecordedOnce(InvalidState):
    """A person's death is recorded once, and no one who died applies or joins."""


class DateOfDeath(InvalidValue):
    """A date of death lies between the birth and today."""


# Purchasing ---------------------------------------------------------------------------------


class ContractorTypeMismatch(InvalidValue):
    """The credit code's category agrees with the declared contractor type; only public
    institutions state a class."""


class ContractScope(InvalidValue):
    """A contract lists catalogue items and a service area of counties or townships inside
    the purchaser's jurisdiction, each once."""


class ContractChange(InvalidValue):
    """A change of terms changes something, takes effect after the last one, renews to a later
    end, and an award is never dated in the future."""


class ContractAlreadyEnded(InvalidState):
    """A terminated or expired contract ends once; it expires only after its term."""


class InvoiceRecordedAlready(Duplicate):
    """An invoice number is recorded once per contract."""


class EvidenceCitesEvents(InvalidValue):
    """A violation cites events (log positions or aggregate versions) as its evidence."""


class PenaltyTerms(InvalidValue):
    """A penalty follows a recorded violation; fines and deductions carry an amount, others
    none."""


class BanTerms(InvalidValue):
    """A ban is decided by a unit at county level or above."""


class EmployedOnce(InvalidValue):
    """A staff member is employed by a government unit or under a contract, not both."""


class StaffAssignment(InvalidValue):
    """Staff are assigned at the level of their kind, inside their paying contract's area."""


class StaffRemoved(InvalidState):
    """Removed staff take no further changes; no one is hired under a terminated contract."""


class NotAStaffMember(NotPermitted):
    """The person acting is no active staff record of the county or contractor acted for.

    Every decision-maker on a case (investigator, recommender, approver) is a staff record."""

    rule = "not-a-staff-member"


class SignInTaken(Duplicate):
    """A sign-in subject is linked to one active staff record at a time."""


class DeclaredInterests(InvalidValue):
    """A declaration lists each person once, never the declarer as their own relative."""


# Supervision --------------------------------------------------------------------------------


class InvestigationCitations(InvalidValue):
    """An investigation cites alerts, each once, each with the events behind it; verdicts
    judge cited alerts, each once, a dismissal with its reason."""


class InvestigationClosed(InvalidState):
    """A closed investigation takes no more changes; reopening is a new investigation."""


class ClosureNeedsVerdicts(InvalidState):
    """An investigation closes once every cited alert is judged: a violation on a confirmed
    alert, no case to answer when all are dismissed."""


class ViolationOnSubjectsContract(InvalidValue):
    """A violation is recorded on a contract of the investigated subject's contractor."""


# Divisions ----------------------------------------------------------------------------------


class UnknownDivision(DomainError):
    """A division code names no division of the register at that date."""

    rule = "unknown-division"


class DivisionChange(InvalidValue):
    """A change to the division register contradicts the division's history."""


# Minimum-living standards -------------------------------------------------------------------


class StandardsAuthorityOnly(NotPermitted):
    """The local minimum-living standards are set by an approving or supervising authority."""


class StandardTerms(InvalidValue):
    """A minimum-living standard is a positive monthly amount per head in CNY, for dibao or
    tekun, of a province, prefecture or county, with the source it is published in."""


class StandardCorrection(InvalidValue):
    """A standard already set for a date is corrected with a reason, never silently
    replaced."""
