"""Names beside division codes in answers built from aggregates (households, cases).

The register's in-memory index (infra/divisions.py, a copy of ``read_models.divisions``) of
the app serving the request names each code: ``registered_division`` gets
``registered_division_name`` beside it, and so on. An app-wide async dependency binds the
index to the request's context (no thread hop); the views read it from there.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from fastapi import Request

from infra.divisions import RegisterIndex

#: Fields of answers that hold a division code.
DIVISION_FIELDS = (
    "registered_division",
    "residence_division",
    "county",
    "window_division",
    "received_county",
)

_register: ContextVar[RegisterIndex | None] = ContextVar("division_register", default=None)


async def bind_register(request: Request) -> None:
    _register.set(request.app.state.runtime.register)


def named(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` with ``<field>_name`` beside each division code it holds."""
    register = _register.get()
    if register is None:
        return answer
    for field in DIVISION_FIELDS:
        code = answer.get(field)
        if isinstance(code, str):
            answer[f"{field}_name"] = register.name(code)
    return answer
