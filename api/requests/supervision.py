"""Request bodies of supervision: investigations and staff's declared interests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from uuid import UUID

from pydantic import Field

from api.deps import Amount, IsoDate, IsoDateTime, StrictModel, with_reason
from domain.commands import supervision as commands
from domain.investigation import (
    BanOrder,
    CitedAlert,
    PenaltyOrder,
    TerminationOrder,
    VerdictInput,
    ViolationOrder,
)
from domain.provenance import Provenance

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Code = Annotated[str, Field(min_length=1, max_length=12)]
Word = Annotated[str, Field(min_length=1, max_length=40)]
Reason = Annotated[str | None, Field(default=None, max_length=2000)]
ResidentNumber = Annotated[str, Field(min_length=1, max_length=18)]


class OpenInvestigation(StrictModel):
    subject_kind: Annotated[str, Field(max_length=20, description="contractor or staff")]
    subject_id: UUID
    alert_ids: Annotated[list[UUID], Field(min_length=1, max_length=100)]
    grounds: Annotated[Text, Field(description="why the investigation is opened (立案理由)")]

    def command(self, by: Provenance, alerts: Sequence[CitedAlert]) -> commands.OpenInvestigation:
        """``alerts``: the alerts named in ``alert_ids`` as the reader sees them now."""
        return commands.OpenInvestigation(
            subject_kind=self.subject_kind,
            subject_id=self.subject_id,
            alerts=tuple(alerts),
            grounds=self.grounds,
            provenance=with_reason(by, self.grounds),
        )


class Note(StrictModel):
    text: Text

    def command(
        self, investigation_id: UUID, by: Provenance, version: int | None
    ) -> commands.AddInvestigationNote:
        return commands.AddInvestigationNote(
            investigation_id=investigation_id,
            text=self.text,
            provenance=by,
            expected_version=version,
        )


class VerdictBody(StrictModel):
    alert_id: UUID
    verdict: Annotated[str, Field(max_length=20, description="confirmed or dismissed")]
    reason: Reason = None


class Findings(StrictModel):
    summary: Annotated[Text, Field(description="the facts established (查明事实)")]
    verdicts: Annotated[list[VerdictBody], Field(max_length=100, default_factory=list)]

    def command(
        self, investigation_id: UUID, by: Provenance, version: int | None
    ) -> commands.RecordFindings:
        return commands.RecordFindings(
            investigation_id=investigation_id,
            summary=self.summary,
            verdicts=tuple(VerdictInput(v.alert_id, v.verdict, v.reason) for v in self.verdicts),
            provenance=with_reason(by, self.summary),
            expected_version=version,
        )


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

    def order(self) -> ViolationOrder:
        penalty, termination, ban = self.penalty, self.termination, self.ban
        return ViolationOrder(
            contract_id=self.contract_id,
            kind=self.kind,
            severity=self.severity,
            description=self.description,
            penalty=PenaltyOrder(penalty.kind, penalty.basis, penalty.amount) if penalty else None,
            termination=(
                TerminationOrder(termination.effective_at, termination.basis, termination.reason)
                if termination
                else None
            ),
            ban=BanOrder(ban.start, ban.end, ban.reason, ban.deciding_unit) if ban else None,
        )


class Closure(StrictModel):
    outcome: Annotated[str, Field(max_length=40, description="no_case_to_answer or violation")]
    summary: Text
    violation: ViolationPart | None = None

    def command(
        self, investigation_id: UUID, by: Provenance, version: int | None
    ) -> commands.CloseInvestigation:
        return commands.CloseInvestigation(
            investigation_id=investigation_id,
            outcome=self.outcome,
            summary=self.summary,
            violation=self.violation.order() if self.violation else None,
            provenance=with_reason(by, self.summary),
            expected_version=version,
        )


class RelativeBody(StrictModel):
    resident_id: ResidentNumber
    kinship: Annotated[str, Field(max_length=20, description="spouse, parent, child, ...")]


class Interests(StrictModel):
    resident_id: Annotated[ResidentNumber, Field(description="the staff member's own")]
    relatives: Annotated[list[RelativeBody], Field(max_length=50, default_factory=list)]
    reason: Reason = None

    def command(self, staff_id: UUID, by: Provenance) -> commands.DeclareInterests:
        return commands.DeclareInterests(
            staff_id=staff_id,
            resident_id=self.resident_id,
            relatives=tuple((r.resident_id, r.kinship) for r in self.relatives),
            provenance=with_reason(by, self.reason),
        )
