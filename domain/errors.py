"""Named refusals. Each carries the input field at fault so an adapter can point at it."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused a command. Nothing was recorded."""

    #: Short stable identifier of the rule, used in problem types and logs.
    rule: str = "domain-rule"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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
