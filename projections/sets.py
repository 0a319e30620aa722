"""Writing and reading a batch's rows as sets: one statement per table, whatever the batch size.

Rows travel as one array per column and come back as a table through ``unnest``, so a batch of
a thousand rows costs one round trip and one statement, planned once. Reads that do not depend
on each other are sent together (``run_together``: steps that yield ``Read``s), so a batch
waits for the server once per round of reads, not once per read.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import re
import struct
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
from psycopg import Cursor
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format

#: A column of a set: (name, PostgreSQL type).
Column = tuple[str, str]
T = TypeVar("T")


def unnest(columns: Sequence[Column], alias: str = "v") -> str:
    """``unnest(%s::t1[], %s::t2[], ...) AS alias(c1, c2, ...)``: one parameter per column."""
    arrays = ", ".join(f"%b::{kind}[]" for _, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return f"unnest({arrays}) AS {alias}({names})"


def arrays(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """The rows' values column by column (the parameters of ``unnest``)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


class EncodedArray:
    """An array parameter already in PostgreSQL's binary array format (``encode``)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncodedArray) and self.data == other.data

    def __hash__(self) -> int:
        return hash(self.data)


class _EncodedArrayDumper(Dumper):
    format = Format.BINARY
    oid = 0  # the type comes from the statement's cast (``%b::bigint[]``)

    def dump(self, obj: Any) -> bytes:
        return cast(EncodedArray, obj).data


psycopg.adapters.register_dumper(EncodedArray, _EncodedArrayDumper)

_LENGTH = struct.Struct("!i")
_NULL = _LENGTH.pack(-1)
_INT8 = struct.Struct("!iq")
_INT4 = struct.Struct("!ii")
_HEADER = struct.Struct("!iiiii")
_EPOCH_DAY = dt.date(2000, 1, 1).toordinal()


_UUID = _LENGTH.pack(16)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class Unencodable(TypeError):
    """A value an element encoder leaves to psycopg (its whole array is dumped by psycopg)."""


def _text(value: Any) -> bytes:
    data = str(value).encode()
    return _LENGTH.pack(len(data)) + data


def _uuid(value: Any) -> bytes:
    if type(value) is not UUID:
        raise Unencodable(value)
    return _UUID + value.bytes


_ONE_MICROSECOND = dt.timedelta(microseconds=1)


def _timestamptz(value: Any) -> bytes:
    """Microseconds since 2000-01-01 UTC of an aware datetime (a naive one is psycopg's: it
    sends a timestamp without zone, read in the session's)."""
    if type(value) is not dt.datetime or value.tzinfo is None:
        raise Unencodable(value)
    return _INT8.pack(8, (value - _EPOCH) // _ONE_MICROSECOND)  # as ``_microseconds``


_DECIMAL = psycopg.adapters.get_dumper(Decimal, PyFormat.BINARY)(Decimal)


def _numeric(value: Any) -> bytes:
    """psycopg's own binary numeric of a Decimal (its C dumper; the array around it here)."""
    if type(value) is not Decimal:
        raise Unencodable(value)
    data = bytes(cast(bytes, _DECIMAL.dump(value)))
    return _LENGTH.pack(len(data)) + data


#: Element encoders of the binary array format, by type: (element type oid, encoder). Other
#: types (jsonb ...) are left to psycopg's dumpers; these take a third to a half of psycopg's
#: time (it looks for the elements' type and dumps its arrays element by element in Python).
#: An encoder raises ``Unencodable`` for a value it does not take, and the array goes to
#: psycopg whole.
_ENCODERS: dict[str, tuple[int, Callable[[Any], bytes]]] = {
    "bigint": (20, lambda value: _INT8.pack(8, value)),
    "integer": (23, lambda value: _INT4.pack(4, value)),
    "text": (25, _text),
    "date": (1082, lambda value: _INT4.pack(4, value.toordinal() - _EPOCH_DAY)),  # as ``_days``
    "uuid": (2950, _uuid),
    "timestamptz": (1184, _timestamptz),
    "numeric": (1700, _numeric),
}


def _fixed(width: int, numbers: list[int], code: str) -> bytes:
    """Elements of one fixed ``width``, each its length then its number: one ``struct.pack``
    of (width, n1, width, n2, ...) rather than a call per element."""
    lengths_and_numbers = [width] * (2 * len(numbers))
    lengths_and_numbers[1::2] = numbers
    return struct.pack(f"!{code * len(numbers)}", *lengths_and_numbers)


def _microseconds(values: Sequence[dt.datetime]) -> list[int]:
    """Microseconds since 2000-01-01 UTC of aware datetimes (a naive one raises TypeError)."""
    return [(v - _EPOCH) // _ONE_MICROSECOND for v in values]


def _days(values: Sequence[dt.date]) -> list[int]:
    """Days since 2000-01-01 of dates."""
    return [v.toordinal() - _EPOCH_DAY for v in values]


#: Whole-column encoders for arrays with no NULL: (the one type every value must be of, the
#: elements of the values). A third of a red-flags batch's Python went to encoding elements
#: one call each.
_WHOLE: dict[str, tuple[type, Callable[[Sequence[Any]], bytes]]] = {
    "uuid": (UUID, lambda values: _UUID + _UUID.join([v.bytes for v in values])),
    "bigint": (int, lambda values: _fixed(8, list(values), "iq")),
    "integer": (int, lambda values: _fixed(4, list(values), "ii")),
    "timestamptz": (dt.datetime, lambda values: _fixed(8, _microseconds(values), "iq")),
    "date": (dt.date, lambda values: _fixed(4, _days(values), "ii")),
}


def _whole(kind: str, values: Sequence[Any]) -> bytes | None:
    """The elements of ``values`` encoded a column at a time; None when the type has no
    whole-column encoder or a value is not of its exact type (NULL, a subclass, a naive
    datetime): the element encoders then judge each."""
    found = _WHOLE.get(kind)
    if found is None or set(map(type, values)) != {found[0]}:
        return None
    try:
        return found[1](values)
    except TypeError:  # a naive datetime among aware ones
        return None


def encode(kind: str, values: Sequence[Any]) -> Any:
    """``values`` as the parameter of a ``%b::kind[]`` placeholder: encoded here for the types
    of ``_ENCODERS``, else the list for psycopg to dump."""
    found = _ENCODERS.get(kind)
    if found is None:
        return list(values)
    oid, element = found
    if not values:
        return EncodedArray(_HEADER.pack(0, 0, oid, 0, 0)[:12])
    whole = _whole(kind, values)
    if whole is not None:
        return EncodedArray(_HEADER.pack(1, 0, oid, len(values), 1) + whole)
    nulls = False
    parts = [b""]
    try:
        for value in values:
            if value is None:
                nulls = True
                parts.append(_NULL)
            else:
                parts.append(element(value))
    except Unencodable:
        return list(values)
    parts[0] = _HEADER.pack(1, int(nulls), oid, len(values), 1)
    return EncodedArray(b"".join(parts))


#: A placeholder and the array type it is cast to (``%b::uuid[]``, ``%(cases)b::uuid[]``).
_PLACEHOLDER = re.compile(r"%%|%(?:\((\w+)\))?[bst](?:::(\w+)\[\])?")


@functools.lru_cache(maxsize=1024)
def _array_casts(query: str) -> tuple[tuple[int | str, str], ...]:
    """The parameters of ``query`` cast to an array of a type ``encode`` encodes: (position
    or name, type)."""
    found: list[tuple[int | str, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(query):
        if match.group(0) == "%%":
            continue
        name, kind = match.group(1), match.group(2)
        if kind in _ENCODERS:
            found.append((name if name is not None else position, kind))
        position += name is None
    return tuple(found)


def encode_params(query: str, params: Any) -> Any:
    """``params`` of ``query`` with every list cast to an array that ``encode`` encodes (by
    its placeholder's cast) encoded; the others as they are."""
    if not params:
        return params
    casts = _array_casts(query)
    if not casts:
        return params
    encoded: Any = dict(params) if isinstance(params, dict) else list(params)
    for key, kind in casts:
        value = encoded[key]
        if type(value) is list:
            encoded[key] = encode(kind, value)
    return encoded


def columns_of(rows: Sequence[Sequence[Any]], columns: Sequence[Column]) -> list[Any]:
    """The rows' values column by column, each the parameter of its ``unnest`` column."""
    return [
        encode(kind, values)
        for (_, kind), values in zip(columns, arrays(rows, len(columns)), strict=True)
    ]


def insert(
    cursor: Cursor[Any],
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: str = "",
) -> None:
    """Insert every row in one statement; ``conflict`` is an ON CONFLICT clause or ''."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    cursor.execute(
        f"INSERT INTO {table} ({names}) SELECT * FROM {unnest(columns)} {conflict}",
        columns_of(rows, columns),
    )
    meanwhile(WRITE_SLICE_S)


def add_to(
    cursor: Cursor[Any],
    table: str,
    key: Sequence[Column],
    amounts: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    collations: Mapping[str, str] | None = None,
) -> None:
    """Add each row's ``amounts`` to the row of its ``key``, or insert the row as it is when
    there is none: one MERGE, so the table's CHECKs judge the sums. (An INSERT ... ON
    CONFLICT DO UPDATE judges the row it would insert first: a negative amount for a row
    that holds enough fails it.) ``collations``: the key columns to compare in another
    collation than the parameter's (the table column's, for its index). Rows in the order
    given (callers give them in key order: the rows' locks are taken in order)."""
    if not rows:
        return
    collate = collations or {}
    names = [name for name, _ in (*key, *amounts)]
    on = " AND ".join(
        f"t.{name} = d.{name}" + (f' COLLATE "{collate[name]}"' if name in collate else "")
        for name, _ in key
    )
    sums = ", ".join(f"{name} = t.{name} + d.{name}" for name, _ in amounts)
    cursor.execute(
        f"MERGE INTO {table} t USING (SELECT * FROM {unnest((*key, *amounts), 'v')}) d"
        f" ON {on} WHEN MATCHED THEN UPDATE SET {sums}"
        f" WHEN NOT MATCHED THEN INSERT ({', '.join(names)})"
        f" VALUES ({', '.join('d.' + name for name in names)})",
        columns_of(rows, (*key, *amounts)),
    )
    meanwhile(WRITE_SLICE_S)


def upsert(
    cursor: Cursor[Any],
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    key: Sequence[str],
    where: str = "",
) -> None:
    """Insert every row, or set every non-key column of the row already there (only where
    ``where``, a condition on the row there, holds)."""
    updates = ", ".join(f"{name} = excluded.{name}" for name, _ in columns if name not in key)
    condition = f" WHERE {where}" if where else ""
    insert(
        cursor,
        table,
        columns,
        rows,
        conflict=f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}{condition}",
    )


def select_where_in(
    cursor: Cursor[Any],
    query: str,
    keys: Iterable[Any],
    kind: str = "uuid",
) -> list[tuple[Any, ...]]:
    """Run ``query`` (with one ``%s``, the array of ``keys``) when there are keys."""
    values = list(keys)
    if not values:
        return []
    cursor.execute(query.replace("%s", f"%b::{kind}[]", 1), (encode(kind, values),))
    return cursor.fetchall()


@dataclass(frozen=True)
class Read:
    """A query a step waits for (``rows = yield Read(...)``; ``a, b = yield [Read, Read]``
    waits for both): ``run_together`` sends it with every other step's and gives the rows
    back."""

    query: str
    params: Any = None

    def same_params(self, other: Read) -> bool:
        """Whether ``other`` (a read of the same text) has equal parameters (encoded arrays,
        ``EncodedArray``, by their bytes)."""
        return self.params is other.params or bool(self.params == other.params)


#: A step: a generator that yields a ``Read`` (or a list of them) and returns its result.
Step = Generator[Any, Any, T]


def read_rows(query: str, params: Any = None) -> Step[list[tuple[Any, ...]]]:
    """One read as a step (``rows = yield from read_rows(...)``)."""
    rows: list[tuple[Any, ...]] = yield Read(query, params)
    return rows


def read_where_in(query: str, keys: Iterable[Any], kind: str = "uuid") -> Step[list[Any]]:
    """``select_where_in`` as a step: no read when there are no keys."""
    values = list(keys)
    if not values:
        return []
    rows: list[Any] = yield Read(query.replace("%s", f"%b::{kind}[]", 1), (encode(kind, values),))
    return rows


def together(steps: Sequence[Any]) -> Step[list[Any]]:
    """A step running ``steps`` side by side: each round yields the reads every unfinished
    step waits for, all at once, then resumes each with its answer. A step that is not a
    generator is its own result. Returns the results in the order of ``steps``."""
    results: list[Any] = list(steps)
    waiting: dict[int, tuple[Step[Any], list[Read], bool]] = {}

    def advance(index: int, step: Step[Any], answer: Any) -> None:
        try:
            reads = step.send(answer)
        except StopIteration as done:
            results[index] = done.value
            waiting.pop(index, None)
            return
        single = not isinstance(reads, list)
        waiting[index] = (step, [reads] if single else reads, single)

    for index, step in enumerate(steps):
        if isinstance(step, Generator):
            advance(index, step, None)
    while waiting:
        answers = iter((yield [read for _, reads, _ in waiting.values() for read in reads]))
        for index, (step, reads, single) in list(waiting.items()):
            got = [next(answers) for _ in reads]
            advance(index, step, got[0] if single else got)
    return results


def drive(cursor: Cursor[Any], step: Any) -> Any:
    """Run a step: the reads it yields at once are all sent (an identical read once) before
    any answer is read, so in pipeline mode each yield costs one round trip however many
    reads it holds. Returns its result (``step`` itself when it is not a generator)."""
    if not isinstance(step, Generator):
        return step
    answer: Any = None
    while True:
        try:
            reads = step.send(answer)
        except StopIteration as done:
            return done.value
        single = not isinstance(reads, list)
        # Identical reads told apart by their text first, then their parameters compared
        # (not hashed: hashing a batch's arrays element by element was a twentieth of
        # red_flags' Python time).
        sent: list[tuple[Read, Cursor[Any]]] = []
        by_query: dict[str, list[int]] = {}
        which: list[int] = []
        for read in [reads] if single else reads:
            same = by_query.setdefault(read.query, [])
            for index in same:
                if sent[index][0].same_params(read):
                    break
            else:
                index = len(sent)
                sent_cursor = cursor.connection.cursor()
                sent_cursor.execute(read.query, encode_params(read.query, read.params))
                sent.append((read, sent_cursor))
                same.append(index)
            which.append(index)
        rows = [sent_cursor.fetchall() for _, sent_cursor in sent]
        for _, sent_cursor in sent:
            sent_cursor.close()
        # a list of its own for each read: a step may change the rows it is given
        answer = list(rows[which[0]]) if single else [list(rows[index]) for index in which]


def run_together(cursor: Cursor[Any], steps: Sequence[Any]) -> list[Any]:
    """Run ``steps`` side by side (``together``); their results in the order of ``steps``."""
    results: list[Any] = drive(cursor, together(steps))
    return results


#: Work the caller of a batch gives it to do while the server runs the statements the batch
#: has sent (``meanwhile``): a runner's decoding of its next batch. Called with a time budget
#: in seconds (None: to its end); it returns once that is spent or it has nothing left.
Work = Callable[[float | None], None]
_MEANWHILE: contextvars.ContextVar[Work | None] = contextvars.ContextVar("meanwhile", default=None)

#: The slice of the caller's work done after each write is sent: about what the server takes to
#: run one of a batch's writes (a larger slice would leave the server waiting for the next).
WRITE_SLICE_S = 0.005


@contextlib.contextmanager
def work_meanwhile(work: Work | None) -> Iterator[None]:
    """Within the block, ``meanwhile()`` runs slices of ``work``."""
    token = _MEANWHILE.set(work)
    try:
        yield
    finally:
        _MEANWHILE.reset(token)


def meanwhile(budget_s: float | None = None) -> None:
    """Called by a batch once it has sent a write and before it waits for an answer: in
    pipeline mode the server runs the write meanwhile, on another core, and the caller's work
    (``work_meanwhile``) runs here for ``budget_s`` (None: all of it)."""
    work = _MEANWHILE.get()
    if work is not None:
        work(budget_s)
