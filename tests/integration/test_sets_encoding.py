"""The binary arrays of projections/sets.py read back by the real PostgreSQL as psycopg's own.

Every element encoder (``_ENCODERS``) must give the server the values psycopg would have: each
column below is sent both ways in one statement, encoded here and as psycopg dumps the list,
and the server compares them; what an encoder does not take (a naive datetime, an id as text)
goes to psycopg whole and arrives the same."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from projections.sets import EncodedArray, Read, add_to, encode, encode_params, run_together

UTC8 = dt.timezone(dt.timedelta(hours=8))

COLUMNS: dict[str, list[Any]] = {
    "bigint": [0, 1, -1, 2**62, None, -(2**63)],
    "integer": [0, 7, -7, 2**31 - 1, None],
    "text": ["", "a|b", "南沙区", "440103001101", None],
    "date": [dt.date(2000, 1, 1), dt.date(1999, 12, 31), dt.date.min, dt.date.max, None],
    "uuid": [uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), None, uuid.uuid4()],
    "timestamptz": [
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, 20, 40, 1, 123_456, tzinfo=UTC8),
        dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=dt.timezone(-dt.timedelta(hours=5))),
        None,
        dt.datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    ],
    "numeric": [Decimal("960.50"), Decimal("0"), Decimal("-1.5E+3"), None, Decimal("1E-20")],
}


def same_on_server(url: str, kind: str, values: Sequence[Any]) -> tuple[bool, Any]:
    """Whether the server reads ``encode(kind, values)`` as the list psycopg dumps (and what
    it read)."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'Asia/Shanghai'")  # a zone other than UTC
        row = conn.execute(
            f"SELECT %b::{kind}[] IS NOT DISTINCT FROM %b::{kind}[], %b::{kind}[]",
            (encode(kind, values), list(values), encode(kind, values)),
        ).fetchone()
    assert row is not None
    return bool(row[0]), row[1]


@pytest.mark.parametrize("kind", sorted(COLUMNS))
def test_every_encoder_reads_back_as_psycopg_dumps(database_url: str, kind: str) -> None:
    values = COLUMNS[kind]
    encoded = encode(kind, values)
    assert isinstance(encoded, EncodedArray), f"{kind} is not encoded here"
    same, read = same_on_server(database_url, kind, values)
    assert same, (kind, read)
    assert read == values  # and back in Python as they were (an aware datetime: the instant)
    empty_same, empty = same_on_server(database_url, kind, [])
    assert empty_same and empty == []


@pytest.mark.parametrize("kind", sorted(COLUMNS))
def test_a_column_without_nulls_reads_back_as_psycopg_dumps(database_url: str, kind: str) -> None:
    """Arrays with no NULL of one exact type go through the whole-column encoders
    (``_WHOLE``), arrays with a NULL through the element encoders: both as psycopg's."""
    values = [v for v in COLUMNS[kind] if v is not None]
    assert isinstance(encode(kind, values), EncodedArray)
    same, read = same_on_server(database_url, kind, values)
    assert same and read == values, (kind, read)


def test_a_column_of_mixed_types_is_judged_element_by_element() -> None:
    """Not all of the whole-column encoder's exact type: each element as its encoder takes it
    (a bool as the integer it is), or the array left to psycopg (a naive datetime)."""
    assert encode("bigint", [1, True]) == encode("bigint", [1, 1])
    mixed = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 8)]
    assert encode("timestamptz", mixed) == mixed


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        # a naive datetime is psycopg's: a timestamp without zone, read in the session's zone
        ("timestamptz", [dt.datetime(2026, 1, 1, 8), None]),
        ("uuid", [str(uuid.UUID(int=5)), None]),  # an id as text
    ],
)
def test_values_an_encoder_does_not_take_go_to_psycopg_whole(
    database_url: str, kind: str, values: list[Any]
) -> None:
    assert encode(kind, values) == values
    same, _ = same_on_server(database_url, kind, values)
    assert same


def test_identical_reads_are_sent_once_and_answered_each(database_url: str) -> None:
    """``run_together`` sends a read that two steps make alike once (encoded arrays alike by
    their bytes) and gives each step its own rows."""
    ids = [uuid.UUID(int=1), uuid.UUID(int=2)]
    query = "SELECT x FROM unnest(%b::uuid[]) AS x ORDER BY x"

    def step(values: Any) -> Any:
        rows = yield Read(query, (values,))
        rows.append(("mine",))  # a step may change its rows: the other's stay as they were
        return rows

    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        sent: list[str] = []
        original = psycopg.Cursor.execute

        def counting(self: Any, statement: Any, params: Any = None, **kw: Any) -> Any:
            sent.append(str(statement))
            return original(self, statement, params, **kw)

        psycopg.Cursor.execute = counting  # type: ignore[method-assign]
        try:
            first, second, third = run_together(
                cursor,
                [step(encode("uuid", ids)), step(encode("uuid", list(ids))), step(ids[:1])],
            )
        finally:
            psycopg.Cursor.execute = original  # type: ignore[method-assign]
    assert sent.count(query) == 2  # the two alike once, the third on its own
    assert first == second == [(ids[0],), (ids[1],), ("mine",)]
    assert third == [(ids[0],), ("mine",)]


def test_reads_parameters_are_encoded_by_their_placeholders_casts(database_url: str) -> None:
    """A read's lists cast to an array of a type ``encode`` takes are encoded (positional or
    named); the others, and a literal ``%%``, are left to psycopg."""
    ids, days = [uuid.UUID(int=3), None], [dt.date(2026, 1, 1)]
    positional = "SELECT %b::uuid[], %s, '%%', %b::date[], %b::int[], %s::text[]"
    params = encode_params(positional, (ids, 5, days, [1], ["a"]))
    assert params[0] == encode("uuid", ids) and params[2] == encode("date", days)
    assert params[1] == 5 and params[3] == [1]
    assert isinstance(params[4], EncodedArray)
    named = "SELECT %(a)s::bigint[], %(b)b::jsonb, %(c)b::uuid[]"
    params = encode_params(named, {"a": [1, 2], "b": [3], "c": ids})
    assert params == {"a": encode("bigint", [1, 2]), "b": [3], "c": encode("uuid", ids)}
    with psycopg.connect(database_url) as conn:
        row = conn.execute(positional, encode_params(positional, (ids, 5, days, [1], ["a"])))
        assert row.fetchone() == (ids, 5, "%", days, [1], ["a"])


def test_add_to_sums_into_existing_rows_and_inserts_the_others(database_url: str) -> None:
    """``add_to``: a negative amount for a row that holds enough passes (the CHECK judges
    the sum, where an INSERT ... ON CONFLICT judged the amount); one for a row that is not
    there is refused, and the statement changes nothing."""
    key = (("division", "text"), ("status", "text"))
    amounts = (("cases", "integer"),)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            'CREATE TEMPORARY TABLE counts (division text COLLATE "C", status text,'
            " cases integer NOT NULL CHECK (cases >= 0), PRIMARY KEY (division, status))"
        )
        conn.execute("INSERT INTO counts VALUES ('4401', 'received', 2)")
        with conn.cursor() as cursor:
            add_to(
                cursor,
                "counts",
                key,
                amounts,
                [("4401", "approved", 1), ("4401", "received", -1)],
                collations={"division": "C"},
            )
        rows = conn.execute("SELECT * FROM counts ORDER BY division, status").fetchall()
        assert rows == [("4401", "approved", 1), ("4401", "received", 1)]
        refused = [("4401", "received", -1), ("4402", "approved", -1)]
        with (
            pytest.raises(psycopg.errors.CheckViolation),
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            add_to(cursor, "counts", key, amounts, refused)
        rows = conn.execute("SELECT * FROM counts ORDER BY division, status").fetchall()
        assert rows == [("4401", "approved", 1), ("4401", "received", 1)]
