"""Wake-ups when events commit: LISTEN on the channel the store NOTIFYs on every insert."""

from __future__ import annotations

from types import TracebackType

import psycopg
from psycopg import sql


class LogListener:
    """A dedicated connection listening for new events; ``wait`` returns early on one.

    ``channel`` is the recorder's ``channel_name`` (its events table name).
    """

    def __init__(self, conninfo: str, channel: str) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> LogListener:
        self._conn = psycopg.connect(self.conninfo, autocommit=True)
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def wait(self, timeout: float) -> bool:
        """Block until an event commits or ``timeout`` passes; True when one committed."""
        assert self._conn is not None, "use LogListener as a context manager"
        woke = False
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            woke = True
        if woke:  # drain what else is queued, so one burst means one wake-up
            for _ in self._conn.notifies(timeout=0):
                pass
        return woke
