"""Valid identifiers and plausible names, built by the rules (deterministic from a number)."""

from __future__ import annotations

import datetime as dt
import random

from domain.credit_code import ALPHABET, credit_code_check_character
from domain.identifiers import resident_id_check_character

SURNAMES = "陈李黄张梁林刘吴罗何郑杨谢周叶钟曾邓冯朱"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红"


def resident_id(county: str, born: dt.date, sequence: int) -> str:
    """GB 11643: address (the county), birth date, 3-digit sequence, check character."""
    body = f"{county}{born:%Y%m%d}{sequence % 1000:03d}"
    return body + resident_id_check_character(body)


def credit_code(category: str, division: str, number: int) -> str:
    """GB 32100: category, registering division, 9-character organisation code, check."""
    organisation = "".join(ALPHABET[(number // 31**i) % 31] for i in range(9))[::-1]
    body = f"{category}{division}{organisation}"
    return body + credit_code_check_character(body)


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
