"""A legacy system's export, made up: JSON lines in the import format (infra/legacy_import.py).

Its villages are the division register's (``villages``: by default the first villages of the
first counties of the shipped Guangdong file), so the lines pass the register's check.
Deterministic for a seed; ``bad_every`` spoils every n-th line in one of the ways a real
export goes wrong, so an import run shows its reject report.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator, Sequence
from typing import Any

from tools.synthetic.identities import person_name, resident_id
from tools.synthetic.province import months


def shipped_villages(counties: int = 20, per_county: int = 45) -> list[str]:
    """Villages of the shipped register: the first ``per_county`` of each of the first
    ``counties`` counties (real codes)."""
    from infra.divisions_file import DEFAULT_DIVISIONS_FILE, read_division_file

    chosen: dict[str, list[str]] = {}
    for item in read_division_file(DEFAULT_DIVISIONS_FILE).divisions:
        if len(item.code) != 12:
            continue
        county = item.code[:6]
        if county in chosen or len(chosen) < counties:
            villages = chosen.setdefault(county, [])
            if len(villages) < per_county:
                villages.append(item.code)
    return [v for villages in chosen.values() for v in villages]


SPOILERS = (
    "check character",
    "unknown programme",
    "payment above the approved amount",
    "not JSON",
    "unknown field",
)


def legacy_lines(
    count: int,
    *,
    seed: int = 1,
    bad_every: int = 0,
    today: dt.date | None = None,
    villages: Sequence[str] | None = None,
) -> Iterator[str]:
    rng = random.Random(seed)
    today = today or dt.date.today()
    places = sorted(villages) if villages is not None else shipped_villages()
    for n in range(count):
        village = rng.choice(places)
        county = village[:6]
        born = dt.date(1950 + rng.randrange(40), 1 + rng.randrange(12), 1 + rng.randrange(28))
        number = resident_id(county, born + dt.timedelta(days=n // 1000), 500 + n)
        received = dt.date(2021, 1, 4) + dt.timedelta(days=rng.randrange(1200))
        amount = 400 + 100 * rng.randrange(8)
        start = (received + dt.timedelta(days=45)).replace(day=1)
        line: dict[str, Any] = {
            "ref": f"LEGACY-{seed}-{n:07d}",
            "programme": rng.choice(("dibao", "dibao", "tekun")),
            "window_division": village[:9],
            "received_on": received.isoformat(),
            "clerk": f"legacy-clerk-{county}",
            "household": {
                "registered_division": village,
                "residence_division": village,
                "members": [{"resident_id": number, "name": person_name(rng), "relation": "head"}],
            },
            "means_test": {
                "investigated_on": (received + dt.timedelta(days=10)).isoformat(),
                "investigator": f"legacy-officer-{county}",
                "monthly_income": str(rng.randrange(0, 600)),
                "household_size": 1,
            },
            "decision": {
                "outcome": "approved",
                "decided_on": (received + dt.timedelta(days=20)).isoformat(),
                "approver": f"legacy-approver-{county}",
                "monthly_amount": str(amount),
                "start_date": start.isoformat(),
                "reasons": "below the line",
            },
            "payments": [
                {
                    "period": f"{m:%Y-%m}",
                    "amount": str(amount),
                    "paid_on": m.replace(day=5).isoformat(),
                }
                for m in months(
                    start,
                    min(
                        today - dt.timedelta(days=40),
                        start + dt.timedelta(days=rng.randrange(60, 900)),
                    ),
                )
            ],
        }
        if bad_every and n % bad_every == bad_every - 1:
            spoil = SPOILERS[(n // bad_every) % len(SPOILERS)]
            if spoil == "check character":
                broken = number[:17] + ("0" if number[17] != "0" else "1")
                line["household"]["members"][0]["resident_id"] = broken
            elif spoil == "unknown programme":
                line["programme"] = "subsidy"
            elif spoil == "payment above the approved amount" and line["payments"]:
                line["payments"][-1]["amount"] = str(amount * 10)
            elif spoil == "not JSON":
                yield json.dumps(line, ensure_ascii=False)[:-7]
                continue
            else:
                line["legacy_flag"] = "Y"
        yield json.dumps(line, ensure_ascii=False)
