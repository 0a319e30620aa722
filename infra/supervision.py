"""Commands of supervision: misconduct investigations and staff's declared interests.

Closing an investigation with a violation records the violation, and the penalty, termination
and ban it orders, through the contract's and the contractor's own commands, and saves them in
one atomic save with the investigation's closure: either every sanction and the closure are in
the log, or none is. The violation cites the events behind the confirmed alerts as evidence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from domain.contract import Contract
from domain.contractor import Contractor
from domain.errors import DomainError, InvalidValue, NotFound
from domain.investigation import (
    CitedAlert,
    Investigation,
    Outcome,
    RecordedViolation,
    SubjectKind,
    VerdictInput,
    ViolationOrder,
    investigation_id_for,
    parse_subject_kind,
)
from domain.provenance import Provenance
from domain.staff import StaffMember
from infra.ledger_base import LedgerBase

#: Probing stops here: no subject is investigated this many times.
MAX_INVESTIGATIONS_PER_SUBJECT = 10_000


@contextlib.contextmanager
def fields_under(prefix: str) -> Iterator[None]:
    """Name the input field of a refusal as the request body nests it (``violation.penalty``)."""
    try:
        yield
    except DomainError as error:
        if error.field is None:
            error.field = prefix
        elif not error.field.startswith("actor."):
            error.field = f"{prefix}.{error.field}"
        raise


class SupervisionCommands(LedgerBase):
    name = "relief"

    # Investigations ------------------------------------------------------------------------

    def get_investigation(self, investigation_id: UUID) -> Investigation:
        return self._get(Investigation, investigation_id)

    def investigations_of(self, subject_kind: str, subject_id: UUID) -> list[Investigation]:
        """Every investigation of a subject, oldest first (ids are numbered per subject)."""
        kind = parse_subject_kind(subject_kind)
        found = []
        for number in range(1, MAX_INVESTIGATIONS_PER_SUBJECT + 1):
            try:
                found.append(self.get_investigation(investigation_id_for(kind, subject_id, number)))
            except NotFound:
                break
        return found

    def subject_contractor(self, subject_kind: str, subject_id: UUID) -> UUID | None:
        """The contractor behind a subject; NotFound when there is no such subject."""
        kind = parse_subject_kind(subject_kind)
        try:
            if kind is SubjectKind.CONTRACTOR:
                contractor: Contractor = self._get(Contractor, subject_id)
                return contractor.id
            staff: StaffMember = self._get(StaffMember, subject_id)
            return staff.contractor_id
        except NotFound as missing:
            missing.field = "subject_id"
            raise

    def open_investigation(
        self,
        *,
        subject_kind: str,
        subject_id: UUID,
        alerts: Sequence[CitedAlert],
        grounds: str,
        provenance: Provenance,
    ) -> Investigation:
        """Open the subject's next investigation. Two openings racing for the same number
        collide on its id: the second is refused (RecordConflictError) and may retry."""
        contractor_id = self.subject_contractor(subject_kind, subject_id)
        kind = parse_subject_kind(subject_kind)
        number = len(self.investigations_of(kind.value, subject_id)) + 1
        investigation = Investigation.open(
            subject_kind=kind.value,
            subject_id=subject_id,
            contractor_id=contractor_id,
            number=number,
            alerts=alerts,
            grounds=grounds,
            provenance=provenance,
        )
        self.save(investigation)
        return investigation

    def add_investigation_note(
        self,
        investigation_id: UUID,
        *,
        text: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> Investigation:
        investigation = self.get_investigation(investigation_id)
        self._check_expected_version(investigation, expected_version)
        investigation.add_note(text=text, provenance=provenance)
        self.save(investigation)
        return investigation

    def record_investigation_findings(
        self,
        investigation_id: UUID,
        *,
        summary: str,
        verdicts: Sequence[VerdictInput],
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> Investigation:
        investigation = self.get_investigation(investigation_id)
        self._check_expected_version(investigation, expected_version)
        investigation.record_findings(summary=summary, verdicts=verdicts, provenance=provenance)
        self.save(investigation)
        return investigation

    def close_investigation(
        self,
        investigation_id: UUID,
        *,
        outcome: str,
        summary: str,
        provenance: Provenance,
        violation: ViolationOrder | None = None,
        expected_version: int | None = None,
    ) -> Investigation:
        """Close with an outcome; with a violation, record it and its sanctions on the contract
        (and the ban on the contractor) in the same atomic save as the closure."""
        investigation = self.get_investigation(investigation_id)
        self._check_expected_version(investigation, expected_version)
        result = investigation.check_can_close(outcome)
        if result is Outcome.NO_CASE_TO_ANSWER and violation is not None:
            raise InvalidValue("no case to answer records no violation", field="violation")
        if result is Outcome.NO_CASE_TO_ANSWER or violation is None:
            investigation.close(outcome=outcome, summary=summary, provenance=provenance)
            self.save(investigation)
            return investigation
        # Every event of the closure shares one correlation id: the caller's, or the
        # investigation's own id, so the sanctions can be traced back to it.
        by = Provenance(
            actor=provenance.actor,
            reason=provenance.reason,
            correlation_id=provenance.correlation_id or f"investigation:{investigation.id}",
        )
        with fields_under("violation"):
            contract: Contract = self._get(Contract, violation.contract_id)
            if contract.contractor_id != investigation.contractor_id:
                # Checked here too, before anything is recorded on the contract.
                raise InvalidValue(
                    f"contract {contract.id} is not a contract of the subject's contractor",
                    field="contract_id",
                )
            contractor: Contractor = self._get(Contractor, contract.contractor_id)
            number = contract.record_violation(
                kind=violation.kind,
                severity=violation.severity,
                description=violation.description,
                evidence=investigation.violation_evidence(),
                provenance=self._reason(by, violation.description),
            )
        sanctions: list[dict[str, Any]] = [
            {"kind": "violation", "contract_id": str(contract.id), "number": number}
        ]
        if violation.penalty is not None:
            penalty = violation.penalty
            with fields_under("violation.penalty"):
                contract.impose_penalty(
                    violation=number,
                    kind=penalty.kind,
                    basis=penalty.basis,
                    amount=penalty.amount,
                    provenance=self._reason(by, penalty.basis),
                )
            sanctions.append(
                {
                    "kind": "penalty",
                    "contract_id": str(contract.id),
                    "violation": number,
                    "penalty": contract.penalties[-1]["kind"],
                    "amount": contract.penalties[-1]["amount"],
                }
            )
        if violation.termination is not None:
            termination = violation.termination
            with fields_under("violation.termination"):
                contract.terminate(
                    effective_at=termination.effective_at,
                    basis=termination.basis,
                    reason=termination.reason,
                    provenance=self._reason(by, termination.reason),
                )
            sanctions.append(
                {
                    "kind": "termination",
                    "contract_id": str(contract.id),
                    "effective_at": termination.effective_at.isoformat(),
                }
            )
        touched: list[Any] = [investigation, contract]
        if violation.ban is not None:
            ban = violation.ban
            with fields_under("violation.ban"):
                contractor.ban(
                    start=ban.start,
                    end=ban.end,
                    reason=ban.reason,
                    deciding_unit=ban.deciding_unit,
                    provenance=self._reason(by, ban.reason),
                )
            sanctions.append(
                {
                    "kind": "ban",
                    "contractor_id": str(contractor.id),
                    "start": ban.start.isoformat(),
                    "end": ban.end.isoformat(),
                }
            )
            touched.append(contractor)
        investigation.close(
            outcome=outcome,
            summary=summary,
            provenance=by,
            violation=RecordedViolation(
                contract_id=contract.id,
                contractor_id=contract.contractor_id,
                number=number,
                sanctions=tuple(sanctions),
            ),
        )
        self.save(*touched)
        return investigation

    @staticmethod
    def _reason(by: Provenance, reason: str) -> Provenance:
        text = reason.strip()[:2000] if isinstance(reason, str) and reason.strip() else None
        return Provenance(actor=by.actor, reason=text, correlation_id=by.correlation_id)

    # Declared interests (利益冲突申报) ----------------------------------------------------

    def declare_staff_interests(
        self,
        staff_id: UUID,
        *,
        resident_id: str,
        relatives: list[tuple[str, str]],
        provenance: Provenance,
    ) -> StaffMember:
        """The staff member's own resident ID and their relatives', kept as blind indexes."""
        staff: StaffMember = self._get(StaffMember, staff_id)
        staff.declare_interests(
            resident_id=resident_id,
            relatives=relatives,
            key=self.identity_key,
            provenance=provenance,
        )
        self.save(staff)
        return staff
