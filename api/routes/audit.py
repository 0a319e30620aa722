"""Audit over HTTP: verify the log's hash chain; read a case as it stood."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.access import allow, check_record
from api.auth import CurrentPrincipal, Principal
from api.deps import MAX_SEQUENCE, IsoDateTime, Ledger, RuntimeDep
from api.read_audit import AuditorRead, CaseRead, CaseReader
from api.routes.cases import case_json, case_summary
from domain.case import ReliefCase
from domain.clock import business_date
from domain.errors import InvalidState, InvalidValue, NotFound
from infra.audit_chain import version_at
from infra.audit_verify import verify_as_configured
from infra.checkpoints import checkpoints, load_public_key
from infra.database import LoopReads
from infra.evidence import build_bundle
from infra.read_audit import reads_of, record_read
from infra.runtime import Runtime
from infra.sealing import seal_of
from infra.verification_jobs import job, start_or_join

router = APIRouter(tags=["audit"])


@router.get(
    "/audit/verify",
    dependencies=[allow("audit.read")],
)
async def verify(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    response: Response,
    wait: Annotated[
        float, Query(ge=0, le=30, description="seconds to wait for the report (at most 30)")
    ] = 10,
) -> dict[str, Any]:
    """Verify chain, seals and signed checkpoints (as ``relief audit verify --json``): intact
    up to a position, or the first break (position and kind, README "Audit"); how far the log
    is signed and how many events are not; ``ok`` is false also when the newest checkpoint is
    older, or the unsigned tail longer, than the configured limits.

    The verification runs as a job (one at a time; a second request joins the running one):
    answered 200 with the report when it ends within ``wait`` seconds, else 202 with the job's
    status and, in Location, where to ask again (``/audit/verify/jobs/{job}``)."""
    job_id = await run_in_threadpool(
        start_or_join, runtime.pool, principal.actor.id, lambda: verification_report(runtime)
    )
    deadline = time.monotonic() + wait
    while True:
        state = await run_in_threadpool(job, runtime.pool, job_id)
        assert state is not None
        if state["status"] != "running" or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.1)
    return _job_answer(state, response)


@router.get(
    "/audit/verify/jobs/{job_id}",
    dependencies=[allow("audit.read")],
)
def verification_job(job_id: UUID, runtime: RuntimeDep, response: Response) -> dict[str, Any]:
    """A verification's status: running (202), done (200, with its report) or failed."""
    state = job(runtime.pool, job_id)
    if state is None:
        raise NotFound(f"no verification {job_id}", field="job_id")
    return _job_answer(state, response)


def verification_report(runtime: Any) -> dict[str, Any]:
    trusted = load_public_key(runtime.settings.audit_key_file)
    report = verify_as_configured(runtime.settings, runtime.database_url, trusted_key=trusted)
    return {**report.as_dict(), "trusted_key": trusted.hex() if trusted else None}


def _job_answer(state: dict[str, Any], response: Response) -> dict[str, Any]:
    if state["status"] == "done":
        return {**state["report"], "job": state["job"]}
    if state["status"] == "running":
        response.status_code = 202
        response.headers["Location"] = f"/audit/verify/jobs/{state['job']}"
        response.headers["Retry-After"] = "5"
    return state


def _record_in_scope(ledger: Any, principal: Principal, aggregate_id: UUID) -> Any:
    """The record as it is now, if the caller's scope reaches it (else: not found)."""
    try:
        record: Any = ledger.get_any(aggregate_id)
    except AggregateNotFoundError:
        raise NotFound(f"no record {aggregate_id}", field="aggregate_id") from None
    check_record(ledger, principal, record)
    return record


def _version_as_of(
    runtime: Any, aggregate_id: UUID, at: dt.datetime | None, version: int | None
) -> int:
    """The version asked for, or the one in force at ``at`` (exactly one of the two)."""
    if (at is None) == (version is None):
        raise InvalidValue("give exactly one of at or version", field="at")
    if version is not None:
        return version
    assert at is not None
    if at.tzinfo is None:
        raise InvalidValue("at needs a time zone", field="at")
    found = version_at(runtime.pool, aggregate_id, at)
    if found is None:
        raise NotFound(f"{aggregate_id} did not exist at {at.isoformat()}", field="at")
    return found


@router.get(
    "/cases/{case_id}/as-of",
    dependencies=[allow("case.read")],
    response_model=dict[str, Any],
)
async def case_as_of(
    case_id: UUID,
    request: Request,
    reader: CaseRead,
    at: Annotated[IsoDateTime | None, Query(description="a moment, with time zone")] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_SEQUENCE)] = None,
) -> Response:
    """The case as it stood at a moment or at a version."""
    runtime: Runtime = request.app.state.runtime  # no dependencies: fewer to resolve
    ledger = runtime.ledger
    if at is not None and version is None:
        # The version in force at the instant, the nearest snapshot, the events after it and
        # the read record: one statement, sent from the event loop (infra/ledger.py ``as_of``).
        if at.tzinfo is None:
            raise InvalidValue("at needs a time zone", field="at")
        loop_reads: LoopReads = request.app.state.loop_reads
        if loop_reads.serves() and ledger.reads_on_loop():
            case = await ledger.read_as_of(case_id, at, reader, loop_reads.fetch)
        else:
            case = await run_in_threadpool(ledger.as_of, case_id, at, recording=reader)
        if case is None:
            raise NotFound(f"{case_id} did not exist at {at.isoformat()}", field="at")
    else:
        case = await run_in_threadpool(_case_at_version, runtime, ledger, case_id, at, version)
    content = {"as_of": at.isoformat() if at else None, **case_summary(request, case)}
    return case_json(content)


def _case_at_version(
    runtime: Any, ledger: Any, case_id: UUID, at: dt.datetime | None, version: int | None
) -> ReliefCase:
    version = _version_as_of(runtime, case_id, at, version)
    current = ledger.get_case(case_id)
    if version > current.version:
        raise NotFound(f"case {case_id} has no version {version}", field="version")
    case: ReliefCase = ledger.get_case(case_id, version=version)
    return case


@router.get(
    "/audit/checkpoints",
    dependencies=[allow("audit.read")],
)
def list_checkpoints(
    runtime: RuntimeDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQUENCE, description="a sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, Any]:
    """Signed checkpoints after sequence number ``after``, in order, for outsiders to hold
    (``relief audit witness``): sequence, position, range, link, Merkle root, previous
    checkpoint's digest, legacy boundary, time, key, signature."""
    return {"items": [c.as_dict() for c in checkpoints(runtime.pool, after=after, limit=limit)]}


@router.get(
    "/audit/public-key",
    dependencies=[allow("audit.read")],
)
def public_key(runtime: RuntimeDep) -> dict[str, str]:
    """The Ed25519 public key that signs checkpoints (raw, hex)."""
    key = load_public_key(runtime.settings.audit_key_file)
    if key is None:
        raise NotFound("this process holds no audit key", field="RELIEF_AUDIT_KEY")
    return {"algorithm": "Ed25519", "public_key": key.hex()}


@router.get(
    "/audit/bundles/{aggregate_id}",
    dependencies=[allow("audit.read")],
)
def bundle(
    aggregate_id: UUID,
    runtime: RuntimeDep,
    ledger: Ledger,
    read: AuditorRead,
) -> Response:
    """An evidence bundle: the history, its proofs and the public key, in one signed file
    that ``relief audit verify-bundle`` checks offline. For auditors and supervisors, with a
    stated purpose; bundles of cases hold personal data unmasked, so the read is recorded."""
    if not runtime.settings.audit_key_file.exists():
        raise InvalidState(
            "this process holds no audit key to sign a bundle", field="RELIEF_AUDIT_KEY"
        )
    record = _record_in_scope(ledger, read.principal, aggregate_id)
    if isinstance(record, ReliefCase):
        record_read(
            runtime.pool, aggregate_id, read.actor, read.purpose, f"/audit/bundles/{aggregate_id}"
        )
    data = build_bundle(runtime.pool, aggregate_id, runtime.audit_key(), seal_of(ledger))
    return Response(
        data,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="evidence-{aggregate_id}.json"'},
    )


@router.get(
    "/cases/{case_id}/decision-view",
    dependencies=[allow("case.read")],
)
def decision_view(case_id: UUID, ledger: Ledger, reader: CaseReader) -> dict[str, Any]:
    """What the decision-maker saw: the case as it stood just before each decision."""
    case = ledger.get_case(case_id)
    kinds = (
        ReliefCase.Approved,
        ReliefCase.Rejected,
        ReliefCase.Suspended,
        ReliefCase.Resumed,
        ReliefCase.Closed,
    )
    decisions: list[Any] = [e for e in ledger.events.get(case_id) if isinstance(e, kinds)]
    return {
        "items": [
            {
                "decision": type(e).__name__,
                "version": e.originator_version,
                "decided_at": e.timestamp.isoformat(),
                "by": e.provenance.actor.id,
                "case_before": ledger.get_case(case_id, version=e.originator_version - 1).summary(),
            }
            for e in decisions
        ],
        "current_version": case.version,
    }


@router.get(
    "/cases/{case_id}/reads",
    dependencies=[allow("audit.read")],
)
def case_reads(
    case_id: UUID,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, Any]:
    """Who read this case's personal data or history, when, and for what stated purpose."""
    return {"items": reads_of(runtime.pool, case_id, limit)}


@router.get(
    "/audit/aggregates/{aggregate_id}/as-of",
    dependencies=[allow("audit.read")],
)
def aggregate_as_of(
    aggregate_id: UUID,
    ledger: Ledger,
    runtime: RuntimeDep,
    read: AuditorRead,
    at: Annotated[IsoDateTime | None, Query(description="a moment, with time zone")] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_SEQUENCE)] = None,
) -> dict[str, Any]:
    """Any record (contract, contractor, staff member, household, case) as it stood; for
    auditors and supervisors, with a stated purpose (reads of cases are recorded)."""
    version = _version_as_of(runtime, aggregate_id, at, version)
    _record_in_scope(ledger, read.principal, aggregate_id)
    try:
        record: Any = ledger.get_any(aggregate_id, version=version)
    except AggregateNotFoundError:
        raise NotFound(f"no record {aggregate_id} at version {version}", field="version") from None
    if isinstance(record, ReliefCase):
        record_read(
            runtime.pool,
            aggregate_id,
            read.actor,
            read.purpose,
            f"/audit/aggregates/{aggregate_id}/as-of",
        )

    day = business_date(at) if at else runtime.services.clock.today()
    try:
        summary = record.summary(day)
    except TypeError:
        summary = record.summary()
    return {
        "kind": type(record).__name__,
        "as_of": at.isoformat() if at else None,
        "version": record.version,
        "state": summary,
    }
