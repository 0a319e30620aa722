"""Who did it and why: carried by every event (the when is the event's own timestamp)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from domain.errors import InvalidValue
from domain.values import check_printable


class Role(Enum):
    """Roles of the people and systems that act on the ledger."""

    INTAKE_CLERK = "intake_clerk"  # 受理窗口工作人员
    HANDLING_STAFF = "handling_staff"  # 政府经办人员
    CONTRACTOR_STAFF = "contractor_staff"  # 承接主体工作人员
    APPROVER = "approver"  # 县级审批人员
    SUPERVISOR = "supervisor"  # 监督人员
    AUDITOR = "auditor"
    INTEGRATION = "integration"
    SYSTEM = "system"  # the ledger's own processes (imports, scheduled expiry)


@dataclass(frozen=True)
class Actor:
    """The person or system acting, with the organisation it acts for.

    ``id`` is the staff record's id (its UUID as text) when the caller's sign-in is linked to
    one (``StaffMember.SignInLinked``), otherwise the token's subject; ``subject`` keeps the
    token's subject when it differs from ``id``, so an audit sees who signed in."""

    id: str
    role: Role
    organisation: str
    subject: str | None = None

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise InvalidValue("actor id must not be empty", field="actor.id")
        if not self.organisation.strip():
            raise InvalidValue("actor organisation must not be empty", field="actor.organisation")


@dataclass(frozen=True)
class Provenance:
    """Who recorded an event, why, and which request it belongs to.

    ``correlation_id`` ties together the events of one business transaction across aggregates
    (it is supplied by the caller of a command and copied onto each event the command records).
    """

    actor: Actor
    reason: str | None = None
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        if self.reason is not None:
            if len(self.reason) > 2000:
                raise InvalidValue("reason must be at most 2000 characters", field="reason")
            check_printable(self.reason, field="reason")
        if self.correlation_id is not None and not (0 < len(self.correlation_id) <= 200):
            raise InvalidValue(
                "correlation id must have 1 to 200 characters", field="correlation_id"
            )

    def to_dict(self) -> dict[str, str | None]:
        data = {
            "actor_id": self.actor.id,
            "actor_role": self.actor.role.value,
            "actor_organisation": self.actor.organisation,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
        }
        if self.actor.subject is not None:  # absent, not null: earlier events read the same
            data["actor_subject"] = self.actor.subject
        return data

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> Provenance:
        actor_id, role, organisation = (
            data["actor_id"],
            data["actor_role"],
            data["actor_organisation"],
        )
        assert actor_id is not None and role is not None and organisation is not None
        return cls(
            actor=Actor(
                id=actor_id,
                role=Role(role),
                organisation=organisation,
                subject=data.get("actor_subject"),
            ),
            reason=data.get("reason"),
            correlation_id=data.get("correlation_id"),
        )
