"""Supervision: misconduct investigations and staff's declared interests; one handler per
command.

Closing an investigation with a violation records the violation, and the penalty, termination
and ban it orders, through the contract's and the contractor's own commands, and saves them in
one atomic save with the investigation's closure: either every sanction and the closure are in
the log, or none is. The violation cites the events behind the confirmed alerts as evidence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.commands.supervision import (
    AddInvestigationNote,
    CloseInvestigation,
    DeclareInterests,
    InvestigationCommand,
    OpenInvestigation,
    RecordFindings,
)
from domain.contract import Contract
from domain.contractor import Contractor
from domain.errors import DomainError, NotFound, ViolationOnSubjectsContract
from domain.investigation import (
    BanSanction,
    Investigation,
    PenaltySanction,
    RecordedViolation,
    Sanction,
    SubjectKind,
    TerminationSanction,
    ViolationOrder,
    ViolationSanction,
    investigation_id_for,
    parse_subject_kind,
)
from domain.provenance import Provenance
from domain.staff import StaffMember
from services.store import Store, check_expected_version

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


def with_reason(by: Provenance, reason: str) -> Provenance:
    """The closure's provenance with the reason of one sanction (what its event says)."""
    text = reason.strip()[:2000] or None
    return Provenance(actor=by.actor, reason=text, correlation_id=by.correlation_id)


class SupervisionService:
    def __init__(self, store: Store, identity_key: bytes) -> None:
        self.store = store
        self.identity_key = identity_key

    # Investigations ------------------------------------------------------------------------

    def investigations_of(self, subject_kind: str, subject_id: UUID) -> list[Investigation]:
        """Every investigation of a subject, oldest first (ids are numbered per subject)."""
        kind = parse_subject_kind(subject_kind)
        found = []
        for number in range(1, MAX_INVESTIGATIONS_PER_SUBJECT + 1):
            investigation_id = investigation_id_for(kind, subject_id, number)
            if not self.store.exists(investigation_id):
                break
            found.append(self.store.get(Investigation, investigation_id))
        return found

    def subject_contractor(self, subject_kind: str, subject_id: UUID) -> UUID | None:
        """The contractor behind a subject; NotFound when there is no such subject."""
        kind = parse_subject_kind(subject_kind)
        try:
            if kind is SubjectKind.CONTRACTOR:
                return self.store.get(Contractor, subject_id).id
            return self.store.get(StaffMember, subject_id).contractor_id
        except NotFound as missing:
            missing.field = "subject_id"
            raise

    def open_investigation(self, command: OpenInvestigation) -> Investigation:
        """Open the subject's next investigation. Two openings racing for the same number
        collide on its id: the second is refused (RecordConflictError) and may retry."""
        contractor_id = self.subject_contractor(command.subject_kind, command.subject_id)
        number = len(self.investigations_of(command.subject_kind, command.subject_id)) + 1
        investigation = Investigation.open(
            subject_kind=command.subject_kind,
            subject_id=command.subject_id,
            contractor_id=contractor_id,
            number=number,
            alerts=command.alerts,
            grounds=command.grounds,
            provenance=command.provenance,
        )
        self.store.save(investigation)
        return investigation

    def add_investigation_note(self, command: AddInvestigationNote) -> Investigation:
        investigation = self._investigation(command)
        investigation.add_note(text=command.text, provenance=command.provenance)
        self.store.save(investigation)
        return investigation

    def record_findings(self, command: RecordFindings) -> Investigation:
        investigation = self._investigation(command)
        investigation.record_findings(
            summary=command.summary, verdicts=command.verdicts, provenance=command.provenance
        )
        self.store.save(investigation)
        return investigation

    def close_investigation(self, command: CloseInvestigation) -> Investigation:
        """Close with an outcome; with a violation, record it and its sanctions on the contract
        (and the ban on the contractor) in the same atomic save as the closure."""
        investigation = self._investigation(command)
        investigation.check_can_close(command.outcome, with_violation=command.violation is not None)
        if command.violation is None:
            investigation.close(
                outcome=command.outcome, summary=command.summary, provenance=command.provenance
            )
            self.store.save(investigation)
            return investigation
        # Every event of the closure shares one correlation id: the caller's, or the
        # investigation's own id, so the sanctions can be traced back to it.
        by = Provenance(
            actor=command.provenance.actor,
            reason=command.provenance.reason,
            correlation_id=(
                command.provenance.correlation_id or f"investigation:{investigation.id}"
            ),
        )
        recorded, sanctioned = self._sanction(investigation, command.violation, by)
        investigation.close(
            outcome=command.outcome, summary=command.summary, provenance=by, violation=recorded
        )
        self.store.save(investigation, *sanctioned)
        return investigation

    def _sanction(
        self, investigation: Investigation, order: ViolationOrder, by: Provenance
    ) -> tuple[RecordedViolation, list[Aggregate]]:
        """Record the ordered violation and its sanctions on the contract and contractor (not
        yet saved); what the closure records of them, and the aggregates to save with it."""
        with fields_under("violation"):
            contract = self.store.get(Contract, order.contract_id)
            if contract.contractor_id != investigation.contractor_id:
                # Checked here too, before anything is recorded on the contract.
                raise ViolationOnSubjectsContract(
                    f"contract {contract.id} is not a contract of the subject's contractor",
                    field="contract_id",
                )
            contractor = self.store.get(Contractor, contract.contractor_id)
            number = contract.record_violation(
                kind=order.kind,
                severity=order.severity,
                description=order.description,
                evidence=investigation.violation_evidence(),
                provenance=with_reason(by, order.description),
            )
        sanctions: list[Sanction] = [ViolationSanction(contract.id, number)]
        touched: list[Aggregate] = [contract]
        if order.penalty is not None:
            penalty = order.penalty
            with fields_under("violation.penalty"):
                contract.impose_penalty(
                    violation=number,
                    kind=penalty.kind,
                    basis=penalty.basis,
                    amount=penalty.amount,
                    provenance=with_reason(by, penalty.basis),
                )
            imposed = contract.penalties[-1]
            sanctions.append(PenaltySanction(contract.id, number, imposed.kind, imposed.amount))
        if order.termination is not None:
            termination = order.termination
            with fields_under("violation.termination"):
                contract.terminate(
                    effective_at=termination.effective_at,
                    basis=termination.basis,
                    reason=termination.reason,
                    provenance=with_reason(by, termination.reason),
                )
            sanctions.append(TerminationSanction(contract.id, termination.effective_at))
        if order.ban is not None:
            ban = order.ban
            with fields_under("violation.ban"):
                contractor.ban(
                    start=ban.start,
                    end=ban.end,
                    reason=ban.reason,
                    deciding_unit=ban.deciding_unit,
                    provenance=with_reason(by, ban.reason),
                )
            sanctions.append(BanSanction(contractor.id, ban.start, ban.end))
            touched.append(contractor)
        recorded = RecordedViolation(
            contract_id=contract.id,
            contractor_id=contract.contractor_id,
            number=number,
            sanctions=tuple(sanctions),
        )
        return recorded, touched

    def _investigation(self, command: InvestigationCommand) -> Investigation:
        investigation = self.store.get(Investigation, command.investigation_id)
        check_expected_version(investigation, command.expected_version)
        return investigation

    # Declared interests (利益冲突申报) ----------------------------------------------------

    def declare_interests(self, command: DeclareInterests) -> StaffMember:
        """The staff member's own resident ID and their relatives', kept as blind indexes."""
        staff = self.store.get(StaffMember, command.staff_id)
        staff.declare_interests(
            resident_id=command.resident_id,
            relatives=command.relatives,
            key=self.identity_key,
            provenance=command.provenance,
        )
        self.store.save(staff)
        return staff
