"""Contract splitting across the purchasers of one prefecture (and the province), against
each purchaser's tender limit with its source; near misses that must stay silent."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from domain.commands.purchasing import AwardContract, RegisterContractor
from infra.runtime import Runtime
from projections.red_flags.config import TenderLimit
from projections.red_flags.queries import query_alerts
from tests.factories import BY_OFFICER, credit_code
from tests.integration.test_red_flags import CONFIG, Flags, run

pytestmark = pytest.mark.integration

LIMITS = (
    TenderLimit("44", Decimal(100_000), "provincial notice on procurement limits"),
    TenderLimit("4401", Decimal(100_000), "Guangzhou procurement catalogue"),
    TenderLimit("440104", Decimal(200_000), "Yuexiu district notice"),
)


class LimitedFlags(Flags):
    preset_config = dataclasses.replace(CONFIG, tender_limits=LIMITS, name="tender limits")


def contractor(runtime: Runtime) -> uuid.UUID:
    return runtime.services.purchasing.register_contractor(
        RegisterContractor(
            name="Tongxin",
            contractor_type="social_organisation",
            credit_code=credit_code(),
            institution_class=None,
            provenance=BY_OFFICER,
        )
    ).id


def award(
    runtime: Runtime,
    who: uuid.UUID,
    purchaser: str,
    value: int,
    *,
    ago: int,
    item: str = "care_and_nursing",
    term: tuple[int, int] = (-30, 100),
) -> None:
    today = runtime.services.clock.today()
    runtime.services.purchasing.award_contract(
        AwardContract(
            contractor_id=who,
            purchaser=purchaser,
            work_items=(item,),
            service_area=(purchaser if len(purchaser) == 6 else "440103",),
            start=today + dt.timedelta(days=term[0]),
            end=today + dt.timedelta(days=term[1]),
            value=str(value),
            funding_source="relief_work_funds",
            awarded_on=today - dt.timedelta(days=ago),
            provenance=BY_OFFICER,
        )
    )


def test_splitting_across_purchasers_of_one_prefecture_and_the_province(runtime: Runtime) -> None:
    # A county, another county (its own, higher limit) and the province: one purchase.
    split = contractor(runtime)
    award(runtime, split, "440103", 95_000, ago=20)
    award(runtime, split, "440104", 190_000, ago=12)
    award(runtime, split, "44", 97_000, ago=5)
    # Near misses: two prefectures; three work items; terms that do not meet; one not "just
    # under" its own purchaser's limit (150,000 is far under Yuexiu's 200,000).
    prefectures = contractor(runtime)
    for purchaser, ago in (("440103", 20), ("440104", 12), ("440305", 5)):
        award(
            runtime, prefectures, purchaser, 95_000 if purchaser != "440104" else 190_000, ago=ago
        )
    items = contractor(runtime)
    for item, ago in (
        ("care_and_nursing", 20),
        ("rehabilitation_training", 12),
        ("psychological_counselling", 5),
    ):
        award(runtime, items, "440103", 95_000, ago=ago, item=item)
    apart = contractor(runtime)
    for term, ago in (((-60, -40), 20), ((-39, -20), 12), ((-19, 30), 5)):
        award(runtime, apart, "440103", 95_000, ago=ago, term=term)
    limit = contractor(runtime)
    for purchaser, value, ago in (
        ("440103", 95_000, 20),
        ("440104", 150_000, 12),
        ("440103", 96_000, 5),
    ):
        award(runtime, limit, purchaser, value, ago=ago)

    run(runtime, LimitedFlags)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        found: list[dict[str, Any]] = query_alerts(cursor, rule="contract_splitting", limit=100)[0]
    assert [a["subject_id"] for a in found] == [str(split)]
    reason = found[0]["reason"]
    assert "440103, 440104, 44" in reason or "44, 440103, 440104" in reason
    for source in ("provincial notice", "Guangzhou procurement catalogue", "Yuexiu district"):
        assert source in reason
    assert len(found[0]["evidence"]) == 3
