"""Small value rules shared by aggregates: money, periods, text, enumerations."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal
from enum import Enum
from typing import TypeVar

from domain.errors import InvalidValue

MAX_AMOUNT = Decimal("1000000000")  # one billion yuan: far above any relief contract
#: Money as it is written: ASCII digits, at most ten before the point (the bound above) and
#: two after it (fen). No sign, exponent, spaces, separators or digits of other scripts.
AMOUNT_TEXT = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
AMOUNT_FORM = "plain decimal digits with at most two decimals, e.g. 960 or 960.50"


def plain_amount(value: object) -> Decimal:
    """An amount of yuan as written: text matching ``AMOUNT_TEXT``, a whole number, or a
    Decimal with at most two decimals; ValueError otherwise. Never computes with the value
    before its size is known (``1e999999999`` is refused, not evaluated)."""
    if isinstance(value, str):
        if AMOUNT_TEXT.fullmatch(value) is None:
            raise ValueError(f"write amounts as {AMOUNT_FORM}, not {value[:40]!r}")
        return Decimal(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_AMOUNT:
            raise ValueError(f"amounts lie between 0 and {MAX_AMOUNT} yuan")
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        if value.is_zero():
            return Decimal(0)
        sign, _, exponent = value.as_tuple()
        if sign or value.adjusted() >= 10 or not isinstance(exponent, int):
            raise ValueError(f"amounts lie between 0 and {MAX_AMOUNT} yuan")
        if exponent < -2 and value != value.quantize(Decimal("0.01")):
            raise ValueError("amounts have at most two decimals (fen)")
        return value
    raise ValueError(f"write amounts as {AMOUNT_FORM}")


def parse_amount(value: object, *, field: str, allow_zero: bool = False) -> Decimal:
    """A positive amount of yuan with at most two decimals (fen), as ``plain_amount`` reads it."""
    try:
        amount = plain_amount(value)
    except ValueError as error:
        raise InvalidValue(f"{field}: {error}", field=field) from None
    if amount == 0 and not allow_zero:
        raise InvalidValue(f"{field} must be > 0", field=field)
    if amount > MAX_AMOUNT:
        raise InvalidValue(f"{field} exceeds {MAX_AMOUNT} yuan", field=field)
    return amount.quantize(Decimal("0.01"))


def require_text(value: object, *, field: str, max_length: int = 2000) -> str:
    """Free text (reasons, notes): any printable text, kept verbatim and never interpreted."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{field} is required", field=field)
    if len(value) > max_length:
        raise InvalidValue(f"{field} must be at most {max_length} characters", field=field)
    check_printable(value, field=field)
    return value.strip()


def check_printable(value: str, *, field: str) -> None:
    """No control characters (NUL and the like) other than newline and tab."""
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in value):
        raise InvalidValue(f"{field} holds control characters", field=field)


def require_person_name(value: object, *, field: str) -> str:
    """A person's name (姓名) as the household register writes it: letters of any script,
    with the separators names use (space, middle dot ·, hyphen, apostrophe, full stop).
    Markup, quotes, brackets, digits and semicolons are no part of a name."""
    name = require_text(value, field=field, max_length=100)
    for character in name:
        category = unicodedata.category(character)
        if not (category[0] in "LM" or character in NAME_SEPARATORS):
            raise InvalidValue(
                f"{field} may hold letters and the separators of names only, not {character!r}",
                field=field,
            )
    return name


NAME_SEPARATORS = frozenset(" ·•・-'’.")


def check_term(start: dt.date, end: dt.date, *, field: str = "term") -> None:
    if end < start:
        raise InvalidValue(
            f"{field} ends ({end.isoformat()}) before it starts ({start.isoformat()})",
            field=field,
        )


def parse_period(value: str, *, field: str = "period") -> tuple[int, int]:
    """A calendar month 'YYYY-MM'."""
    try:
        year, month = (int(part) for part in value.split("-"))
        dt.date(year, month, 1)
        if not 1900 <= year <= 2999:
            raise ValueError
    except (ValueError, AttributeError):
        raise InvalidValue(
            f"{field} must be a month as YYYY-MM, got {value!r}", field=field
        ) from None
    if len(value) != 7:
        raise InvalidValue(f"{field} must be a month as YYYY-MM, got {value!r}", field=field)
    return year, month


def period_start(period: str) -> dt.date:
    year, month = parse_period(period)
    return dt.date(year, month, 1)


def period_end(period: str) -> dt.date:
    year, month = parse_period(period)
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


E = TypeVar("E", bound=Enum)


def parse_enum(kind: type[E], value: str, field: str) -> E:
    """One of an enumeration's values, or a refusal listing the values it has."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise InvalidValue(
            f"unknown {field} {value!r}; expected one of {allowed}", field=field
        ) from None
