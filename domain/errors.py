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
