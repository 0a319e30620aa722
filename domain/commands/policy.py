"""Commands of policy data: staffing band tables with their effective dates."""

from __future__ import annotations

from dataclasses import dataclass

from domain.commands import Command


@dataclass(frozen=True, kw_only=True)
class LoadStaffingPolicy(Command):
    """A band table as a JSON document (domain/staffing.py reads it), with the ``source`` it
    comes from and, when it corrects the table adopted for its date, a ``reason``."""

    document: dict[str, object]
