"""The read audit: every read of a case's personal data or history is itself recorded.

Such reads say who is reading (the bearer token) and why (``X-Purpose``); an auditor asks
``GET /cases/{id}/reads`` who looked at a case.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, NamedTuple
from uuid import UUID

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentPrincipal, Principal, current_actor
from api.deps import get_runtime
from domain.errors import InvalidValue
from domain.provenance import Actor
from domain.values import check_printable
from infra.read_audit import ReadRecord, record_read, write_read
from infra.runtime import Runtime


class PurposeRequired(InvalidValue):
    """Reading personal data needs its purpose stated in the X-Purpose header."""

    rule = "purpose-required"


def stated_purpose(x_purpose: str | None) -> str:
    if not x_purpose or not x_purpose.strip():
        raise PurposeRequired(
            "send the header X-Purpose: <why you read this personal data> (e.g. "
            "'X-Purpose: annual review'); the read is recorded with it",
            field="X-Purpose",
        )
    check_printable(x_purpose, field="X-Purpose")
    return x_purpose.strip()


class AuditRead(NamedTuple):
    principal: Principal
    purpose: str

    @property
    def actor(self) -> Actor:
        return self.principal.actor


async def auditor_read(
    principal: CurrentPrincipal,
    x_purpose: Annotated[str | None, Header(max_length=500)] = None,
) -> AuditRead:
    """An audit read (the route's access rule names who may), with its stated purpose."""
    return AuditRead(principal, stated_purpose(x_purpose))


async def case_reader(
    case_id: UUID,
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
    x_purpose: Annotated[str | None, Header(max_length=500)] = None,
) -> AsyncIterator[Actor]:
    """Who reads this case's personal data, and why: recorded (committed) before the answer
    is sent. The record is written while the route loads and shapes the answer (one commit
    beside the load instead of before it); the answer waits for it, and a record that fails
    fails the request (503 when the database is away), so no answer goes unrecorded."""
    purpose = stated_purpose(x_purpose)
    recorded = asyncio.ensure_future(
        run_in_threadpool(record_read, runtime.pool, case_id, actor, purpose, request.url.path)
    )
    try:
        yield actor
    except BaseException:
        with contextlib.suppress(Exception):
            await recorded
        raise
    await recorded


async def case_read(
    case_id: UUID,
    request: Request,
    principal: CurrentPrincipal,
    x_purpose: Annotated[str | None, Header(max_length=500)] = None,
) -> AsyncIterator[ReadRecord]:
    """As ``case_reader``, for a route whose load of the case writes the record in its own
    statement (``ledger.get``/``as_of`` with ``recording=``: no round trip of its own). A
    record the route did not write (the case was loaded already, the load failed) is written
    here before the answer is sent, as ``case_reader`` does: no answer goes unrecorded."""
    # Few dependencies (the principal the access check already has, the runtime from the
    # app): each costs FastAPI's resolution on every request of the hottest reads.
    runtime: Runtime = request.app.state.runtime
    record = ReadRecord(case_id, principal.actor, stated_purpose(x_purpose), request.url.path)
    try:
        yield record
    except BaseException:
        if not record.written:
            with contextlib.suppress(Exception):
                await run_in_threadpool(write_read, runtime.pool, record)
        raise
    if not record.written:
        await run_in_threadpool(write_read, runtime.pool, record)


#: ``scope="function"``: the code after ``yield`` runs when the route has returned, before
#: its answer is sent.
CaseReader = Annotated[Actor, Depends(case_reader, scope="function")]
CaseRead = Annotated[ReadRecord, Depends(case_read, scope="function")]
AuditorRead = Annotated[AuditRead, Depends(auditor_read)]
