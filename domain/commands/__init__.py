"""Typed commands: what a caller asks the ledger to do, one class per command.

A command is plain data: who asks and why (``provenance``) and the values of the request, typed
as the domain takes them. The application services (services/) handle each command by name:
they load the aggregates it concerns, call their command methods, and save the new events in
one atomic save. The HTTP request models map to these in one place each (their ``command``
method); the bulk paths (seed, legacy import) build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.provenance import Provenance


@dataclass(frozen=True, kw_only=True)
class Command:
    """Who asks, why, and in which business transaction (copied onto every event)."""

    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class ChangeCommand(Command):
    """A command on an existing record; ``expected_version`` (If-Match) refuses it when the
    record has changed since the caller read it."""

    expected_version: int | None = None
