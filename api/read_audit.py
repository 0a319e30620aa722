"""The read audit: every read of a case's personal data or history is itself recorded.

Such reads say who is reading (the actor headers) and why (``X-Purpose``); an auditor asks
``GET /cases/{id}/reads`` who looked at a case.
"""

from __future__ import annotations

from typing import Annotated, NamedTuple
from uuid import UUID

from fastapi import Depends, Header, Request

from api.deps import get_runtime
from api.identity import current_actor
from domain.errors import InvalidValue, NotPermitted
from domain.provenance import Actor, Role
from infra.read_audit import record_read
from infra.runtime import Runtime


def stated_purpose(x_purpose: str | None) -> str:
    if not x_purpose or not x_purpose.strip():
        raise InvalidValue(
            "state the purpose of reading personal data in X-Purpose", field="X-Purpose"
        )
    return x_purpose.strip()


def require_auditor(actor: Actor, what: str) -> None:
    if actor.role not in (Role.AUDITOR, Role.SUPERVISOR):
        raise NotPermitted(f"{what} are for auditors and supervisors", field="X-Actor-Role")


class AuditRead(NamedTuple):
    actor: Actor
    purpose: str


def auditor_read(
    actor: Annotated[Actor, Depends(current_actor)],
    x_purpose: Annotated[str | None, Header(max_length=500)] = None,
) -> AuditRead:
    """An auditor or supervisor, with the purpose of the read."""
    require_auditor(actor, "these reads")
    return AuditRead(actor, stated_purpose(x_purpose))


def case_reader(
    case_id: UUID,
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
    x_purpose: Annotated[str | None, Header(max_length=500)] = None,
) -> Actor:
    """Who reads this case's personal data, and why; recorded before the answer is given."""
    record_read(runtime.pool, case_id, actor, stated_purpose(x_purpose), request.url.path)
    return actor


CaseReader = Annotated[Actor, Depends(case_reader)]
AuditorRead = Annotated[AuditRead, Depends(auditor_read)]
