"""Commands of the local minimum-living standards (domain/living_standards.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from domain.commands import Command


@dataclass(frozen=True, kw_only=True)
class SetStandard(Command):
    """The monthly standard per head of ``programme`` in ``division`` from ``effective_from``,
    as published in ``source``; ``reason`` says why when it corrects the figure of a date."""

    division: str
    programme: str
    effective_from: dt.date
    monthly_amount: object  # text or Decimal of yuan; the domain reads it (parse_monthly_amount)
    source: str
    currency: str = "CNY"
    reason: str | None = None
