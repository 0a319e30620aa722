"""The local minimum-living standards over the real store: every figure kept and answered as
known then, and the income-bunching red flags measuring each means test against the standard
in force on its visit's day, re-judged when a standard arrives late or is corrected."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from domain.case import HomeVisit, IncomeItem, MeansTest
from domain.commands.cases import InvestigateCase
from domain.commands.standards import SetStandard
from domain.errors import StandardTerms, UnknownDivision
from domain.provenance import Actor, Provenance, Role
from infra.projection_runner import PostgresFeedRunner, rebuild
from infra.runtime import Runtime
from projections.red_flags.config import RedFlagsConfig
from projections.red_flags.projection import RedFlagsProjection
from projections.red_flags.queries import query_alerts
from projections.standards import (
    StandardsProjection,
    standard_in_force,
    standard_versions,
    standards_in_force,
)
from services.standards import standards_from_document
from tests.factories import hire_staff_for, officer
from tests.integration.helpers import events_written, projection_conclusions
from tests.scenario import application

pytestmark = pytest.mark.integration

APPROVER = Provenance(Actor("approver-9", Role.APPROVER, "4401"), reason="published notice")


class Flags(RedFlagsProjection):
    preset_config = RedFlagsConfig(
        name="standards tests", bunching_min_sample=8, bunching_alpha=Decimal("0.01")
    )


def standard(
    runtime: Runtime,
    division: str,
    amount: str,
    effective_from: dt.date = dt.date(2000, 1, 1),
    *,
    programme: str = "dibao",
    reason: str | None = None,
) -> str:
    outcome = runtime.services.standards.set_standard(
        SetStandard(
            division=division,
            programme=programme,
            effective_from=effective_from,
            monthly_amount=amount,
            source=f"notice of {division}",
            reason=reason,
            provenance=APPROVER,
        )
    )
    return outcome.kind


def run(runtime: Runtime, projection: type[Any], batch: int = 50) -> None:
    PostgresFeedRunner(
        runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, projection, batch_size=batch
    ).catch_up()


def read(runtime: Runtime, query: Any, *args: Any, **kwargs: Any) -> Any:
    run(runtime, StandardsProjection)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        return query(cursor, *args, **kwargs)


def open_alerts(runtime: Runtime) -> dict[str, list[int]]:
    """rule → the evidence of its open alert (one subject each here)."""
    run(runtime, Flags)
    with runtime.pool.connection() as conn, conn.cursor() as cursor:
        items, _ = query_alerts(cursor, status="open", limit=100)
    return {a["rule"]: a["evidence"] for a in items}


# The read model ------------------------------------------------------------------------------


def test_every_figure_is_kept_and_answered_as_known_then(runtime: Runtime) -> None:
    assert standard(runtime, "44", "800") == "set"
    assert standard(runtime, "4401", "900", dt.date(2019, 1, 1)) == "set"
    assert standard(runtime, "440103", "1000", dt.date(2020, 1, 1)) == "set"
    assert standard(runtime, "440103", "1000", dt.date(2020, 1, 1)) == "unchanged"
    first = read(runtime, standard_in_force, "dibao", "440103001001", dt.date(2021, 1, 1))
    assert (first.division, first.monthly_amount, first.kind) == ("440103", Decimal(1000), "set")
    assert standard(runtime, "440103", "1010", dt.date(2020, 1, 1), reason="typing error") == (
        "corrected"
    )

    now = read(runtime, standard_in_force, "dibao", "440103001001", dt.date(2021, 1, 1))
    assert (now.monthly_amount, now.kind, now.corrects, now.reason) == (
        Decimal(1010),
        "corrected",
        first.version,
        "typing error",
    )
    # As the ledger knew it when the first figure was recorded: the correction is not there.
    then = read(
        runtime,
        standard_in_force,
        "dibao",
        "440103001001",
        dt.date(2021, 1, 1),
        known_at=first.recorded_at,
    )
    assert (then.position, then.monthly_amount, then.superseded_by) == (
        first.position,
        Decimal(1000),
        None,
    )
    # Every figure stays, the corrected one pointing at its correction.
    county = read(runtime, standard_versions, division="440103")
    assert [(r.monthly_amount, r.kind, r.superseded_by) for r in county] == [
        (Decimal(1000), "set", now.position),
        (Decimal(1010), "corrected", None),
    ]
    assert len(read(runtime, standard_versions, division="44")) == 4

    # The most specific division in force on the day.
    def amount(place: str, day: dt.date) -> Decimal | None:
        found = read(runtime, standard_in_force, "dibao", place, day)
        return found.monthly_amount if found else None

    assert amount("440103001001", dt.date(2019, 12, 31)) == Decimal(900)  # before the county's
    assert amount("440104001001", dt.date(2021, 1, 1)) == Decimal(900)  # prefecture's
    assert amount("440305001001", dt.date(2021, 1, 1)) == Decimal(800)  # province's
    assert amount("440103001001", dt.date(1999, 12, 31)) is None  # none in force yet
    assert read(runtime, standards_in_force, place="440103", day=dt.date(2021, 1, 1)) == [now]
    assert read(runtime, standard_in_force, "tekun", "440103001001", dt.date(2021, 1, 1)) is None


def test_refusals_record_nothing(runtime: Runtime) -> None:
    before = events_written(runtime.database_url)
    with pytest.raises(UnknownDivision) as unknown:
        standard(runtime, "440199", "1000")
    assert unknown.value.field == "division"
    # A list is all or nothing: its second entry refused, the first is not recorded either.
    listed = standards_from_document(
        [
            {
                "division": "440103",
                "programme": "dibao",
                "effective_from": "2024-01-01",
                "monthly_amount": "1100",
                "source": "notice",
            },
            {
                "division": "440104",
                "programme": "dibao",
                "effective_from": "2024-01-01",
                "monthly_amount": "0",
                "source": "notice",
            },
        ],
        APPROVER,
    )
    with pytest.raises(StandardTerms) as terms:
        runtime.services.standards.load_standards(listed, listed_as="standards")
    assert terms.value.field == "standards[1].monthly_amount"
    assert events_written(runtime.database_url) == before
    assert runtime.services.standards.load_standards(listed[:1], listed_as="standards")[0].kind == (
        "set"
    )
    assert events_written(runtime.database_url) == before + 2  # opened, set


# The income-bunching rules -------------------------------------------------------------------


def investigate_just_under(runtime: Runtime) -> list[uuid.UUID]:
    """Eight means tests in one village of 440606, each just under a line of 1000."""
    cases = []
    for income in (951, 958, 965, 972, 979, 986, 993, 999):
        case = application(runtime, "440606")
        runtime.services.cases.investigate_case(
            InvestigateCase(
                case_id=case.id,
                means_test=MeansTest(
                    (IncomeItem("wages", Decimal(income)),),
                    (),
                    1,
                    HomeVisit(
                        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
                        case.registered_division.code,
                        "inv-a",
                    ),
                ),
                contract_id=None,
                provenance=hire_staff_for(runtime.services, officer("440606", who="inv-a")),
            )
        )
        cases.append(case.id)
    return cases


def standard_position(runtime: Runtime, division: str) -> int:
    rows = read(runtime, standard_versions, division=division)
    return int(rows[-1].position)


def test_bunching_waits_for_the_standard_and_follows_its_corrections(runtime: Runtime) -> None:
    investigate_just_under(runtime)
    assert open_alerts(runtime) == {}  # no standard covers the village: nothing to judge by

    # The prefecture's standard, entered after the visits: the visits are judged by it.
    standard(runtime, "4406", "1000")
    found = open_alerts(runtime)
    assert set(found) == {"income_bunching_village", "income_bunching_investigator"}
    assert standard_position(runtime, "4406") in found["income_bunching_village"]

    # A county standard from tomorrow is not the one in force on the visits' day.
    tomorrow = runtime.services.clock.today() + dt.timedelta(days=1)
    standard(runtime, "440606", "1500", tomorrow)
    assert set(open_alerts(runtime)) == {"income_bunching_village", "income_bunching_investigator"}

    # The prefecture's figure corrected upwards: the incomes are no longer just under it.
    assert standard(runtime, "4406", "1200", reason="the notice says 1200") == "corrected"
    assert open_alerts(runtime) == {}

    # The county's own figure in force on the visits' day beats the prefecture's.
    standard(runtime, "440606", "1000", dt.date(2020, 1, 1))
    found = open_alerts(runtime)
    assert set(found) == {"income_bunching_village", "income_bunching_investigator"}
    county = [r for r in read(runtime, standard_versions, division="440606")]
    cited = {r.position for r in county} & set(found["income_bunching_village"])
    assert cited == {r.position for r in county if r.effective_from == dt.date(2020, 1, 1)}

    # The same conclusions whatever the batches: a rebuild one event at a time.
    concluded = projection_conclusions(runtime, "rm_red_flags_g1")
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, Flags, batch_size=1)
    assert projection_conclusions(runtime, "rm_red_flags_g2") == concluded


def test_a_standard_set_before_the_visits_is_used_as_they_arrive(runtime: Runtime) -> None:
    standard(runtime, "440606", "1000")
    run(runtime, Flags)
    investigate_just_under(runtime)
    assert set(open_alerts(runtime)) == {"income_bunching_village", "income_bunching_investigator"}
    # ...and one batch holding both the standard and the visits concludes the same.
    concluded = projection_conclusions(runtime, "rm_red_flags_g1")
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, Flags, batch_size=5000)
    assert projection_conclusions(runtime, "rm_red_flags_g2") == concluded
