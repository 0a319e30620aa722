"""The projection framework: what a projection is, independent of which feed drives it.

A projection declares its tables (DDL with unqualified names) and applies batches of events by
writing rows through the cursor it is given (``apply_batch``: per event through ``handles``
methods by default, or as sets). The runner (infra/projection_runner.py) decides where the
tables live (one PostgreSQL schema per build generation, selected with ``search_path``), feeds
events in order, and commits the rows and the position in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from psycopg import Cursor

from projections.sets import meanwhile


@dataclass(frozen=True)
class RecordedEvent:
    """A domain event with its place in the global log."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    event: Any

    @property
    def timestamp(self) -> Any:
        return self.event.timestamp


#: A handler gets the projection, what it writes to (the batch's cursor, or the batch state of
#: a projection that works in sets) and the event.
Handler = Callable[[Any, Any, RecordedEvent], None]
H = TypeVar("H", bound=Handler)


def handles(*event_classes: type) -> Callable[[H], H]:
    """Mark a projection method as the handler of the given event classes."""

    def mark(method: H) -> H:
        method.__dict__.setdefault("_handles", []).extend(event_classes)
        return method

    return mark


class Projection:
    """Base class of projections. Subclasses set ``name``, ``tables``, ``views`` and handlers."""

    #: Unique name; also the stem of the schemas its generations live in.
    name: ClassVar[str]
    #: DDL creating its tables, with unqualified names.
    tables: ClassVar[Sequence[str]]
    #: Tables exposed to readers as views in the ``read_models`` schema.
    views: ClassVar[Sequence[str]]
    #: Tables whose rows each belong to divisions, with the columns holding their codes: every
    #: write to them marks the counties it touched (the first six digits of each code written
    #: or removed; a row with no code marks every county), so an answer about one county keeps
    #: its tag while batches change only other counties' rows (api/etags.py).
    scoped: ClassVar[Mapping[str, Sequence[str]]] = {}
    _handlers: ClassVar[dict[type, Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type, Handler] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for event_class in getattr(attribute, "_handles", ()):
                    handlers[event_class] = attribute
        cls._handlers = handlers

    @classmethod
    def topics(cls) -> list[str]:
        """Event topics this projection reads; the feed may skip the others."""
        from eventsourcing.utils import get_topic

        return sorted(get_topic(event_class) for event_class in cls._handlers)

    @classmethod
    def rebuild_stages(cls) -> tuple[type[Projection], type[Projection]] | None:
        """Two projections that together apply what this one does, for a rebuild in two
        processes (``infra.projection_runner.rebuild``): the first applies every event as
        it comes, the second follows it, applying the events the first has committed, on the
        same tables. The second may see rows of events after its batch (the first is ahead):
        what it writes must depend on the rows only, and be written again by whichever later
        event changes the rows it read. None: the rebuild runs in one process."""
        return None

    @classmethod
    def event_fields(cls) -> dict[type, frozenset[str]] | None:
        """The only fields this projection reads of the events of some classes (with their
        ``timestamp``), for a feed that can leave the others undecoded: any use of one it
        left fails loudly (infra.codec.UNDECODED). Classes not named come whole; None: all
        do."""
        return None

    def apply(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        """One event: a batch of one."""
        self.apply_batch(cursor, [recorded])

    def apply_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        """Apply a batch of events (in log order, or each aggregate's order on Kafka).

        The default hands each event to its handler with the cursor; projections that work in
        sets override it (their handlers fold events into the batch's rows) and must leave the
        same rows whatever the batch boundaries."""
        for recorded in events:
            handler = self._handlers.get(type(recorded.event))
            if handler is not None:
                handler(self, cursor, recorded)


class FoldingProjection(Projection):
    """A projection that works in sets: ``load_batch`` reads the rows a batch touches once, its
    handlers (``(self, batch, recorded)``) fold each event into them in memory, in order, and
    the batch's ``write(cursor)`` writes each table with one statement."""

    def load_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> Any:
        raise NotImplementedError

    def apply_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        batch = self.load_batch(cursor, events)
        for recorded in events:
            handler = self._handlers.get(type(recorded.event))
            if handler is not None:
                handler(self, batch, recorded)
        batch.write(cursor)
        meanwhile()
