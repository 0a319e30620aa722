"""Group commit (RELIEF_GROUP_COMMIT, off by default): the saves that arrive together are
written in one transaction, under one table lock, each in its own savepoint, so a version
conflict fails only its own command and one commit (one WAL flush) serves them all.

A save hands its stored events to the committer thread and waits: while one transaction
commits, the saves that arrive meanwhile queue up and go into the next. A save answers only
once the transaction holding it has committed; when that transaction fails, every save in it
fails (none was recorded).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg.sql import SQL, Identifier

#: Saves written in one transaction, at most.
MAX_BATCH = 64


@dataclass
class _Save:
    events: Sequence[StoredEvent]
    done: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommit:
    """The recorder's ``insert_events``, batching concurrent saves (see module doc)."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.insert = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, %s, %s) RETURNING notification_id"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        self._queue: list[_Save] = []
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> list[int]:
        if not stored_events:
            return []
        save = _Save(stored_events)
        with self._ready:
            self._queue.append(save)
            self._ready.notify()
        save.done.wait()
        if save.error is not None:
            raise save.error
        return save.ids

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                self._write(batch)
            except BaseException as error:  # the transaction failed: none of them is recorded
                for save in batch:
                    if save.error is None:
                        save.error = error
                        save.ids = []
            finally:
                for save in batch:
                    save.done.set()

    def _write(self, batch: list[_Save]) -> None:
        recorder = self.recorder
        with (
            recorder.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            recorder._lock_table(cursor)
            recorder._notify_channel(cursor)
            for save in batch:
                try:
                    with conn.transaction():  # a savepoint: a conflict fails this save only
                        for event in save.events:
                            cursor.execute(
                                self.insert,
                                (
                                    event.originator_id,
                                    event.originator_version,
                                    event.topic,
                                    event.state,
                                ),
                                prepare=True,
                            )
                            row = cursor.fetchone()
                            assert row is not None
                            save.ids.append(int(row["notification_id"]))
                except psycopg.IntegrityError as conflict:
                    save.ids = []
                    save.error = IntegrityError(str(conflict))
