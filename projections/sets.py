"""Writing and reading a batch's rows as sets: one statement per table, whatever the batch size.

Rows travel as one array per column and come back as a table through ``unnest``, so a batch of
a thousand rows costs one round trip and one statement, planned once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Cursor

#: A column of a set: (name, PostgreSQL type).
Column = tuple[str, str]


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
        arrays(rows, len(columns)),
    )


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
    cursor.execute(query.replace("%s", f"%b::{kind}[]", 1), (values,))
    return cursor.fetchall()
