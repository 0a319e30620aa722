"""Unified social credit code (统一社会信用代码), GB 32100-2015."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidIdentifier
from domain.identifiers import PROVINCE_CODES

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

#: Registering authority and organisation category (positions 1-2) named in DOMAIN.md.
CATEGORIES: dict[str, str] = {
    "11": "government organ",
    "12": "public institution",
    "13": "mass organisation under the staffing authority",
    "19": "other organisation under the staffing authority",
    "51": "social group",
    "52": "private non-enterprise unit / social service organisation",
    "53": "foundation",
    "91": "enterprise",
    "92": "individual business",
    "93": "farmers' co-operative",
    "Y1": "other",
}


def credit_code_check_character(first17: str) -> str:
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


@dataclass(frozen=True)
class CreditCode:
    code: str

    def __post_init__(self) -> None:
        check_credit_code(self.code)

    @property
    def category(self) -> str:
        return self.code[:2]

    @property
    def division(self) -> str:
        return self.code[2:8]


def check_credit_code(code: str, *, field: str | None = None) -> None:
    """Raise InvalidIdentifier naming the fault when ``code`` is no valid credit code."""
    if not isinstance(code, str) or len(code) != 18:
        raise InvalidIdentifier(
            f"unified social credit code must have 18 characters, got "
            f"{len(code) if isinstance(code, str) else 'none'}",
            field=field,
            fault="length",
        )
    bad = sorted({ch for ch in code if ch not in _VALUE})
    if bad:
        raise InvalidIdentifier(
            f"unified social credit code contains {''.join(bad)!r}; allowed are digits and "
            "the letters A-Y without I, O, S, V, Z",
            field=field,
            fault="characters",
        )
    if code[:2] not in CATEGORIES:
        raise InvalidIdentifier(
            f"unified social credit code starts with {code[:2]!r}, which is no known "
            "registering authority and organisation category",
            field=field,
            fault="category",
        )
    # Positions 3-8 are the registering authority's division in 6-digit padded form
    # (350100 is a prefecture's own authority), so only digits and a province are required.
    division = code[2:8]
    if not division.isdigit() or division[:2] not in PROVINCE_CODES:
        raise InvalidIdentifier(
            f"unified social credit code's division code {division!r} is not a division code",
            field=field,
            fault="division-code",
        )
    expected = credit_code_check_character(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier(
            f"unified social credit code's check character is {code[17]!r}, expected {expected!r}",
            field=field,
            fault="check-character",
        )


def parse_credit_code(code: str, *, field: str | None = None) -> CreditCode:
    normalised = code.strip().upper() if isinstance(code, str) else code
    check_credit_code(normalised, field=field)
    return CreditCode(normalised)
