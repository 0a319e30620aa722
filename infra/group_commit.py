"""Group commit: the inserts that arrive together in one process written by one transaction.

Every insert of the log takes the table lock and commits alone (infra/sealing.py
``PositionedRecorder``): its lock, NOTIFY, COMMIT and WAL flush are paid once per command, and
the lock is held through the flush. With ``Groups`` the threads of a process that insert while
another insert is on its way queue up; when it is done, one of them (the leader) writes every
queued insert in one transaction under one table lock, each in a savepoint of its own, so a
version conflict (IntegrityError) rolls back only its own insert and fails only its caller.
Any other error fails the whole group, and the transaction leaves nothing behind. A thread
alone (no queue) writes as before, with no savepoint.

The groups form by themselves: nobody waits for company, a thread only waits while the
insert before it is being written (as it would have waited on the table lock anyway).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import StoredEvent


@dataclass
class Insert:
    """One caller's stored events, and what became of them (positions or an error)."""

    stored_events: Sequence[StoredEvent]
    positions: Sequence[int] | None = None
    error: BaseException | None = None
    done: bool = False
    #: Whether the leader wrote it with others (for tests and the figures: groups formed).
    grouped: bool = field(default=False, compare=False)


#: Writes a group: sets each insert's ``positions`` or ``error`` (IntegrityError only: that
#: insert's savepoint rolled back), or raises, and then none of them is recorded.
WriteGroup = Callable[[list[Insert]], None]


class Groups:
    """Leader and followers around one queue (thread-safe, one per recorder)."""

    def __init__(self, write_group: WriteGroup, *, max_group: int = 64) -> None:
        self._write_group = write_group
        self.max_group = max_group
        self._queue: list[Insert] = []
        self._leading = False
        self._changed = threading.Condition(threading.Lock())
        #: Groups written and inserts in them, since the start (what it gave: tests, metrics).
        self.groups = 0
        self.inserts = 0

    @property
    def leading(self) -> bool:
        """Whether a group is being written now."""
        return self._leading

    def queued(self) -> int:
        """Inserts waiting for the group being written."""
        with self._changed:
            return len(self._queue)

    def insert(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """The positions of ``stored_events`` once committed (with whatever else was queued);
        raises what their write raised."""
        mine = Insert(stored_events)
        with self._changed:
            self._queue.append(mine)
            while self._leading and not mine.done:
                self._changed.wait()
            if not mine.done:
                self._leading = True
                batch, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
        if not mine.done:
            self._lead(batch)
        if mine.error is not None:
            raise mine.error
        return mine.positions

    def _lead(self, batch: list[Insert]) -> None:
        try:
            self._write_group(batch)
        except BaseException as error:
            # Nothing of the group was recorded (its COMMIT may be in doubt: each caller
            # settles its own, infra/database.py); a conflict already met stays that caller's.
            for each in batch:
                each.positions = None
                if each.error is None:
                    each.error = _own(error)
        finally:
            with self._changed:
                self.groups += 1
                self.inserts += len(batch)
                for each in batch:
                    each.done = True
                    each.grouped = len(batch) > 1
                self._leading = False
                self._changed.notify_all()


def _own(error: BaseException) -> BaseException:
    """An exception of the same kind for each caller of a failed group, raised from the one
    the group met (one exception object raised in several threads would share one traceback);
    the cause keeps what the retry policy looks at (infra/faults.py looks through causes)."""
    try:
        copy: BaseException = type(error)(*error.args)
    except Exception:  # an exception type whose constructor wants more
        return error
    copy.__cause__ = error
    return copy
