"""RFC 9457 problem details (application/problem+json) for every error the API returns."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
from eventsourcing.persistence import (
    MapperDeserialisationError,
    PersistenceError,
    RecordConflictError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Unauthenticated
from domain.errors import (
    CaseAlreadyClosed,
    ContractClosed,
    ContractorBanned,
    DomainError,
    Duplicate,
    DuplicateActiveCase,
    InvalidState,
    NotFound,
    NotPermitted,
    VersionMismatch,
)
from infra.faults import is_transient
from infra.ledger import RecordUnreadable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

#: Refusals are 422 unless listed: who may not act (403), what is missing (404), and commands
#: that conflict with the record's current state (409) or with the caller's expected version.
STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (Unauthenticated, 401),
    (NotPermitted, 403),
    (NotFound, 404),
    (VersionMismatch, 412),
    (CaseAlreadyClosed, 409),
    (ContractClosed, 409),
    (ContractorBanned, 409),
    (Duplicate, 409),
    (DuplicateActiveCase, 409),
    (InvalidState, 409),
)


def problem(
    status: int,
    title: str,
    *,
    rule: str,
    detail: str | None = None,
    field: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": f"/problems/{rule}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if field:
        body["field"] = field
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


#: The answer while the database cannot be reached (down, restarting, sessions ended): the
#: request may be sent again after Retry-After (a command with its Idempotency-Key).
DATABASE_UNAVAILABLE = {
    "rule": "database-unavailable",
    "title": "The database is unavailable",
    "detail": "the ledger's database could not be reached; send the request again after "
    "Retry-After seconds (a command with the same Idempotency-Key)",
}
RETRY_AFTER_S = 2


def database_unavailable(instance: str | None = None) -> JSONResponse:
    response = problem(503, instance=instance, **DATABASE_UNAVAILABLE)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _aggregate_named(message: str) -> str | None:
    """The aggregate id a seal refusal's message begins with (infra/sealing.py)."""
    head = message.split(" ", 1)[0]
    try:
        return str(uuid.UUID(head))
    except ValueError:
        return None


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in location)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        status = next((code for kind, code in STATUS_BY_ERROR if isinstance(error, kind)), 422)
        extra: dict[str, Any] = {}
        for attribute in ("fault", "existing_case_id"):
            value = getattr(error, attribute, None)
            if value:
                extra[attribute] = value
        response = problem(
            status,
            error.problem_title(),
            rule=error.rule,
            detail=error.message,
            field=error.field,
            instance=request.url.path,
            **extra,
        )
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="relief-ledger"'
        return response

    @app.exception_handler(RecordConflictError)
    async def conflict(request: Request, error: RecordConflictError) -> JSONResponse:
        return problem(
            409,
            "Concurrent modification",
            rule="concurrent-modification",
            detail="another change to this record was saved first; reload it and try again",
            instance=request.url.path,
        )

    @app.exception_handler(RecordUnreadable)
    @app.exception_handler(MapperDeserialisationError)
    async def unreadable(request: Request, error: Exception) -> JSONResponse:
        # Stored bytes that do not open at their place were changed outside the ledger: the
        # record cannot be answered, and the auditors must hear of it (logged as an error).
        aggregate = getattr(error, "aggregate_id", None) or _aggregate_named(str(error))
        log.error("record failed verification on %s: %s", request.url.path, error)
        return problem(
            409,
            "Record failed verification",
            rule="record-failed-verification",
            detail=f"the stored events of record {aggregate} do not verify (changed outside "
            "the ledger); it cannot be read or changed until the audit restores it",
            instance=request.url.path,
            aggregate_id=str(aggregate) if aggregate else None,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in error.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in error.errors()):
            return problem(
                400,
                "Malformed JSON",
                rule="malformed-json",
                detail="the request body is not valid JSON",
                instance=request.url.path,
            )
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        return problem(
            422,
            "Invalid request",
            rule="invalid-request",
            detail=f"{first['field']}: {first['message']}",
            field=first["field"],
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(
            error.status_code,
            str(error.detail) if error.status_code < 500 else "Server error",
            rule=f"http-{error.status_code}",
            instance=request.url.path,
        )

    @app.exception_handler(psycopg.Error)
    @app.exception_handler(PersistenceError)
    async def database_error(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, RecordConflictError):  # the store's IntegrityError is one too
            return await conflict(request, error)
        if not is_transient(error):
            return await unexpected(request, error)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, error)
        # The connections the pools still hold are likely dead too (a restart ends them all):
        # test them now, so the requests that follow get fresh ones.
        await run_in_threadpool(request.app.state.runtime.discard_broken_connections)
        loop_reads = getattr(request.app.state, "loop_reads", None)
        if loop_reads is not None:
            await loop_reads.check()
        return database_unavailable(request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "Server error",
            rule="server-error",
            detail="the request failed; it has been logged",
            instance=request.url.path,
        )


#: The problem document, for the OpenAPI description of every error response.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "instance": {"type": "string"},
    },
}
ERROR_STATUSES = {
    400: "Malformed request (e.g. JSON that does not parse)",
    401: "No valid bearer token",
    403: "The caller's role or scope may not do this",
    404: "No such record (or none within the caller's scope)",
    409: "Conflicts with the record's state, or the same request is in progress",
    412: "If-Match names another version of the record",
    413: "Request body too large",
    422: "Invalid input: the problem names the field at fault",
    503: "The database is unavailable for a moment; retry after Retry-After seconds",
}


def documented_errors() -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        for status, description in ERROR_STATUSES.items()
    }
