"""Commands of supervision: misconduct investigations and staff's declared interests."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.commands import ChangeCommand, Command
from domain.investigation import CitedAlert, VerdictInput, ViolationOrder


@dataclass(frozen=True, kw_only=True)
class OpenInvestigation(Command):
    subject_kind: str  # contractor or staff
    subject_id: UUID
    alerts: tuple[CitedAlert, ...]
    grounds: str


@dataclass(frozen=True, kw_only=True)
class InvestigationCommand(ChangeCommand):
    investigation_id: UUID


@dataclass(frozen=True, kw_only=True)
class AddInvestigationNote(InvestigationCommand):
    text: str


@dataclass(frozen=True, kw_only=True)
class RecordFindings(InvestigationCommand):
    summary: str
    verdicts: tuple[VerdictInput, ...]


@dataclass(frozen=True, kw_only=True)
class CloseInvestigation(InvestigationCommand):
    """With a violation, the violation and the sanctions it orders are recorded on the
    contract (and the ban on the contractor) in the same atomic save as the closure."""

    outcome: str
    summary: str
    violation: ViolationOrder | None = None


@dataclass(frozen=True, kw_only=True)
class DeclareInterests(Command):
    """A staff member's own resident ID and their relatives' (resident ID, kinship): kept
    only as blind indexes."""

    staff_id: UUID
    resident_id: str
    relatives: tuple[tuple[str, str], ...] = ()
