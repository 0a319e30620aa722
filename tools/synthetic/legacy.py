"""A legacy system's export, made up: JSON lines in the import format (infra/legacy_import.py).

Deterministic for a seed; ``bad_every`` spoils every n-th line in one of the ways a real
export goes wrong, so an import run shows its reject report.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from typing import Any

from tools.synthetic.identities import person_name, resident_id
from tools.synthetic.province import PREFECTURES, months

SPOILERS = (
    "check character",
    "unknown programme",
    "payment above the approved amount",
    "not JSON",
    "unknown field",
)


def legacy_lines(
    count: int, *, seed: int = 1, bad_every: int = 0, today: dt.date | None = None
) -> Iterator[str]:
    rng = random.Random(seed)
    today = today or dt.date.today()
    for n in range(count):
        county = f"44{PREFECTURES[n % 5]}{3 + n % 4:02d}"
        village = f"{county}{1 + rng.randrange(5):03d}{1 + rng.randrange(9):03d}"
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
