"""National-standard identifiers: administrative division codes and resident ID numbers.

Division codes follow GB/T 2260 and the statistics division codes: 2 digits province, 4
prefecture, 6 county, 9 township, 12 village/community. Resident identity numbers follow
GB 11643-1999 with an ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

from domain.errors import InvalidIdentifier

#: Province-level codes in GB/T 2260 (mainland provinces, autonomous regions, municipalities,
#: plus Taiwan, Hong Kong and Macao as the standard lists them).
PROVINCE_CODES: frozenset[str] = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)


class DivisionLevel(Enum):
    """Level of an administrative division, named by its code length."""

    PROVINCE = 2
    PREFECTURE = 4
    COUNTY = 6
    TOWNSHIP = 9
    VILLAGE = 12


_SEGMENTS = ((0, 2), (2, 4), (4, 6), (6, 9), (9, 12))
#: Code lengths of the levels (iterating an Enum on every check was a tenth of an import).
_LEVEL_LENGTHS = frozenset(level.value for level in DivisionLevel)


@dataclass(frozen=True, order=True)
class DivisionCode:
    """An administrative division code (行政区划代码) at any level, unpadded."""

    code: str

    def __post_init__(self) -> None:
        check_division_code(self.code)

    @property
    def level(self) -> DivisionLevel:
        return DivisionLevel(len(self.code))

    def at(self, level: DivisionLevel) -> DivisionCode:
        """The enclosing division at ``level`` (itself when the level is its own)."""
        if level.value > len(self.code):
            raise InvalidIdentifier(
                f"division code {self.code} is a {self.level.name.lower()}; "
                f"it has no enclosing {level.name.lower()}",
                fault="level",
            )
        return DivisionCode(self.code[: level.value])

    @property
    def county(self) -> DivisionCode:
        return self.at(DivisionLevel.COUNTY)

    def contains(self, other: DivisionCode) -> bool:
        """True when ``other`` lies inside (or is) this division."""
        return other.code.startswith(self.code)

    def __str__(self) -> str:
        return self.code


def check_division_code(code: str, *, field: str | None = None) -> None:
    """Raise InvalidIdentifier naming the fault when ``code`` is not a division code."""
    if not isinstance(code, str) or not code.isascii() or not code.isdigit():
        raise InvalidIdentifier(
            f"division code {code!r} must contain digits only", field=field, fault="characters"
        )
    if len(code) not in _LEVEL_LENGTHS:
        raise InvalidIdentifier(
            f"division code {code!r} has {len(code)} digits; "
            "expected 2, 4, 6, 9 or 12 (province to village)",
            field=field,
            fault="length",
        )
    if code[:2] not in PROVINCE_CODES:
        raise InvalidIdentifier(
            f"division code {code!r} starts with {code[:2]!r}, which is no province",
            field=field,
            fault="province",
        )
    for start, end in _SEGMENTS[1:]:
        if end > len(code):
            break
        # The county segment may be "00": prefecture-level cities without counties (东莞 4419,
        # 中山 4420) number their townships directly under NNNN00 (东城街道 441900003).
        if set(code[start:end]) == {"0"} and (start, end) != (4, 6):
            raise InvalidIdentifier(
                f"division code {code!r} has an all-zero segment at digits {start + 1}-{end}",
                field=field,
                fault="segment",
            )


def parse_division_code(
    code: str, *, level: DivisionLevel | None = None, field: str | None = None
) -> DivisionCode:
    """Validate ``code`` (optionally at an exact level) and return it as a DivisionCode."""
    check_division_code(code, field=field)
    if level is not None and len(code) != level.value:
        raise InvalidIdentifier(
            f"division code {code!r} must be a {level.name.lower()} code of {level.value} digits",
            field=field,
            fault="level",
        )
    return DivisionCode(code)


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # index: weighted sum mod 11


def resident_id_check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character over the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


class Sex(Enum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True)
class ResidentId:
    """A resident identity number (公民身份号码), GB 11643-1999, 18 characters."""

    number: str

    def __post_init__(self) -> None:
        check_resident_id(self.number)

    @property
    def address_code(self) -> str:
        return self.number[:6]

    @property
    def birth_date(self) -> dt.date:
        return dt.date(int(self.number[6:10]), int(self.number[10:12]), int(self.number[12:14]))

    @property
    def sex(self) -> Sex:
        return Sex.MALE if int(self.number[14:17]) % 2 else Sex.FEMALE

    @property
    def masked(self) -> str:
        """Shown form for roles that do not need the full number: 4401**********1234."""
        return mask_resident_id(self.number)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:  # never leak the number into logs or tracebacks
        return f"ResidentId({self.masked!r})"


def mask_resident_id(number: str) -> str:
    return number[:4] + "*" * (len(number) - 8) + number[-4:] if len(number) > 8 else "****"


def check_resident_id(number: str, *, field: str | None = None) -> None:
    """Raise InvalidIdentifier naming the fault when ``number`` is no valid resident ID."""
    if not isinstance(number, str) or len(number) != 18:
        length = len(number) if isinstance(number, str) else "no"
        raise InvalidIdentifier(
            f"resident ID number must have 18 characters, got {length}",
            field=field,
            fault="length",
        )
    body, check = number[:17], number[17]
    if not (body.isascii() and body.isdigit()) or not (check.isdigit() or check in "Xx"):
        raise InvalidIdentifier(
            "resident ID number must be 17 digits followed by a digit or X",
            field=field,
            fault="characters",
        )
    if body[:2] not in PROVINCE_CODES:
        raise InvalidIdentifier(
            f"resident ID number's address code starts with {body[:2]!r}, which is no province",
            field=field,
            fault="address-code",
        )
    try:
        born = dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise InvalidIdentifier(
            f"resident ID number's birth date {body[6:14]} is not a calendar date",
            field=field,
            fault="birth-date",
        ) from None
    if born.year < 1880:
        raise InvalidIdentifier(
            f"resident ID number's birth date {born.isoformat()} is implausibly early",
            field=field,
            fault="birth-date",
        )
    expected = resident_id_check_character(body)
    if check.upper() != expected:
        raise InvalidIdentifier(
            f"resident ID number's check character is {check!r}, expected {expected!r}",
            field=field,
            fault="check-character",
        )


def parse_resident_id(
    number: str, *, field: str | None = None, today: dt.date | None = None
) -> ResidentId:
    """Validate and normalise (upper-case X); with ``today``, refuse a future birth date."""
    check_resident_id(number, field=field)
    resident_id = ResidentId(number.upper())
    if today is not None and resident_id.birth_date > today:
        raise InvalidIdentifier(
            f"resident ID number's birth date {resident_id.birth_date.isoformat()} "
            "lies in the future",
            field=field,
            fault="birth-date",
        )
    return resident_id
