"""Red-flag facts judge the business day (China Standard Time), whatever offset a record's
time was written in: the issue-17 example and the same instants in offsets -12:00 … +14:00.

The work is built by hand (the domain refuses it outright), as an import or another writer
could deliver it, and applied by the runner's own batch applier.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.utils import get_topic
from psycopg import sql

from domain.case import ReliefCase
from domain.clock import BUSINESS_TZ, business_date
from domain.contract import Contract, Terms
from domain.contractor import Contractor
from domain.provenance import Actor, Provenance, Role
from infra.projection_runner import BatchApplier
from infra.runtime import Runtime
from projections.base import RecordedEvent
from projections.red_flags.queries import query_alerts
from tests.factories import BY_CLERK, BY_OFFICER, BY_SUPERVISOR, approver, credit_code
from tests.integration.test_red_flags import Flags

pytestmark = pytest.mark.integration

D = dt.date
OFFSETS = [dt.timezone(dt.timedelta(minutes=m)) for m in range(-12 * 60, 14 * 60 + 1, 60)]
TERM_END = D(2025, 6, 30)
BAN = (D(2025, 3, 1), D(2025, 3, 31))
DIED_ON = D(2025, 5, 9)


def near_midnight(day: dt.date, rng: random.Random) -> dt.datetime:
    midnight = dt.datetime.combine(day, dt.time.min, BUSINESS_TZ)
    return midnight + dt.timedelta(seconds=rng.randint(-3 * 3600, 3 * 3600))


def test_work_and_deaths_are_judged_on_the_business_day_in_every_offset(
    runtime: Runtime,
) -> None:
    rng = random.Random(17)
    t0 = dt.datetime(2025, 1, 2, 10, tzinfo=BUSINESS_TZ)
    contractor_id, contract_id = uuid.uuid4(), uuid.uuid4()
    code = credit_code()
    events: list[Any] = [
        Contractor.Registered(
            originator_id=contractor_id,
            originator_version=1,
            timestamp=t0,
            originator_topic=get_topic(Contractor),
            name="Care Co",
            contractor_type="social_organisation",
            credit_code=code,
            institution_class=None,
            provenance=BY_OFFICER,
        ),
        Contractor.Banned(
            originator_id=contractor_id,
            originator_version=2,
            timestamp=t0,
            start=BAN[0],
            end=BAN[1],
            reason="falsified visits",
            deciding_unit="440103",
            provenance=BY_SUPERVISOR,
        ),
        Contract.Awarded(
            originator_id=contract_id,
            originator_version=1,
            timestamp=t0,
            originator_topic=get_topic(Contract),
            contractor_id=contractor_id,
            contractor_credit_code=code,
            purchaser="440103",
            terms=Terms(
                ("psychological_counselling",),
                ("440103",),
                D(2025, 1, 1),
                TERM_END,
                Decimal(50000),
            ),
            funding_source="relief_work_funds",
            awarded_on=D(2025, 1, 1),
            provenance=BY_OFFICER,
        ),
    ]
    cases: dict[str, uuid.UUID] = {}

    def case(name: str) -> uuid.UUID:
        case_id = uuid.uuid4()
        cases[name] = case_id
        events.append(
            ReliefCase.ApplicationReceived(
                originator_id=case_id,
                originator_version=1,
                timestamp=t0,
                originator_topic=get_topic(ReliefCase),
                programme="dibao",
                applicant_id="-",
                household_id=uuid.uuid4(),
                registered_division="440103001001",
                window_division="440103001",
                received_county="440103",
                jurisdiction_county="440103",
                cross_region=False,
                provenance=BY_CLERK,
            )
        )
        events.append(
            ReliefCase.Approved(
                originator_id=case_id,
                originator_version=2,
                timestamp=t0,
                programme="dibao",
                monthly_amount=Decimal(900),
                start_date=D(2025, 1, 1),
                reasons="r",
                provenance=approver(),
            )
        )
        return case_id

    versions: dict[uuid.UUID, int] = {}
    served: list[tuple[uuid.UUID, int, dt.datetime]] = []

    def serve(case_id: uuid.UUID, start: dt.datetime, contract: uuid.UUID | None) -> None:
        version = versions.get(case_id, 2) + 1
        versions[case_id] = version
        worker = Actor(f"worker-{len(served)}", Role.CONTRACTOR_STAFF, code)
        events.append(
            ReliefCase.ServiceRecorded(
                originator_id=case_id,
                originator_version=version,
                timestamp=t0,
                work_item="psychological_counselling",
                contract_id=contract,
                contractor_id=contractor_id if contract else None,
                start=start,
                end=start + dt.timedelta(minutes=20),
                place="440103001001",
                provenance=Provenance(worker),
            )
        )
        served.append((case_id, version, start))

    under_contract = case("under contract")
    died = case("died")
    versions[died] = 3
    events.append(
        ReliefCase.BeneficiaryDied(
            originator_id=died,
            originator_version=3,
            timestamp=t0,
            on=DIED_ON,
            provenance=BY_CLERK,
        )
    )
    # The example: 06:30 Beijing time on the day after the term, sent in UTC.
    example = dt.datetime(2025, 6, 30, 22, 30, tzinfo=dt.UTC)
    serve(under_contract, example, contract_id)
    for offset in OFFSETS:
        for boundary in (TERM_END + dt.timedelta(days=1), BAN[0], BAN[1] + dt.timedelta(days=1)):
            serve(under_contract, near_midnight(boundary, rng).astimezone(offset), contract_id)
        serve(died, near_midnight(DIED_ON + dt.timedelta(days=1), rng).astimezone(offset), None)

    recorded = [
        RecordedEvent(n, e.originator_id, e.originator_version, get_topic(type(e)), e)
        for n, e in enumerate(events, start=1)
    ]
    position = {(r.originator_id, r.originator_version): r.position for r in recorded}
    with runtime.pool.connection() as conn, conn.transaction():
        conn.execute(
            sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier("rm_red_flags_g1"))
        )
        BatchApplier(Flags()).apply(conn, recorded)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        found, _ = query_alerts(cursor, limit=1000)

    def flagged(rule: str) -> set[int]:
        return {p for a in found if a["rule"] == rule for p in a["evidence"]}

    def expected(case_id: uuid.UUID, wrong: Any) -> set[int]:
        return {
            position[(c, v)]
            for c, v, start in served
            if c == case_id and wrong(business_date(start))
        }

    assert position[(under_contract, 3)] in flagged("work_outside_term")  # the example
    all_work = {position[(c, v)] for c, v, _ in served}
    outside = expected(under_contract, lambda day: day > TERM_END)
    banned = expected(under_contract, lambda day: BAN[0] <= day <= BAN[1])
    after_death = expected(died, lambda day: day > DIED_ON)
    assert outside and banned and after_death
    assert flagged("work_outside_term") & all_work == outside
    assert flagged("work_by_banned_contractor") & all_work == banned
    assert flagged("record_after_death") & all_work == after_death
    # Some instants of each boundary fell on either side (the seeds did test the edge).
    assert len(expected(under_contract, lambda day: day == BAN[0] - dt.timedelta(days=1))) > 0
    assert len(expected(died, lambda day: day == DIED_ON)) > 0
