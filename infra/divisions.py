"""The division register as commands consult it: an in-memory index of the read model.

``RegisterIndex`` holds every row of ``read_models.divisions`` in memory (about 29,000 for
Guangdong, a few MB) and reloads them when the projection's position moves: it asks for
``max(last_position)`` at most every ``refresh_s`` seconds, and at once (at most every
``miss_refresh_s``) when a code is not found, so a division established a moment ago is seen
by the next command. Lookups are dictionary reads; a command never waits for the database
unless its code is unknown.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping

from psycopg_pool import ConnectionPool

from domain.division import DivisionEntry, MappingRegister
from domain.identifiers import DivisionLevel

log = logging.getLogger(__name__)

LEVELS = {"province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12}


class RegisterIndex:
    """Implements ``DivisionRegister`` and ``DivisionCatalogue`` (domain/division.py)."""

    def __init__(
        self, pool: ConnectionPool, *, refresh_s: float = 3.0, miss_refresh_s: float = 0.5
    ) -> None:
        self.pool = pool
        self.refresh_s = refresh_s
        self.miss_refresh_s = miss_refresh_s
        self._register = MappingRegister()
        self._position: int | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def _refresh(self, *, min_interval: float) -> None:
        if time.monotonic() - self._checked_at < min_interval:
            return
        with self._lock:
            if time.monotonic() - self._checked_at < min_interval:
                return
            with self.pool.connection() as conn:
                row = conn.execute(
                    "SELECT max(last_position) FROM read_models.divisions"
                ).fetchone()
                position = int(row[0]) if row and row[0] is not None else 0
                if position != self._position:
                    rows = conn.execute(
                        "SELECT code, name, level, parent, valid_from, valid_to"
                        " FROM read_models.divisions"
                    ).fetchall()
                    self._register = MappingRegister(
                        DivisionEntry(code, name, DivisionLevel(LEVELS[level]), parent, start, end)
                        for code, name, level, parent, start, end in rows
                    )
                    self._position = position
            self._checked_at = time.monotonic()

    def refresh(self) -> None:
        """Read the read model again now (after an import this process made)."""
        self._refresh(min_interval=0.0)

    def lookup(self, code: str, on_date: dt.date) -> DivisionEntry | None:
        self._refresh(min_interval=self.refresh_s)
        entry = self._register.lookup(code, on_date)
        if entry is None:
            self._refresh(min_interval=self.miss_refresh_s)
            entry = self._register.lookup(code, on_date)
        return entry

    def current(self) -> Mapping[str, DivisionEntry]:
        self._refresh(min_interval=0.0)
        return self._register.current()

    def name(self, code: str) -> str | None:
        self._refresh(min_interval=self.refresh_s)
        return self._register.name(code)

    def __len__(self) -> int:
        self._refresh(min_interval=self.refresh_s)
        return len(self._register)
