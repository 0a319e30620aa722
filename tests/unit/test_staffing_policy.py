"""Staffing minimums by caseload band (DOMAIN.md), as policy data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from domain.errors import (
    BandTableAdoptedAlready,
    CorrectionChangesNothing,
    InvalidValue,
    NoBandTableToCorrect,
    PolicyAuthorityOnly,
)
from domain.provenance import Actor, Provenance, Role
from domain.staffing import (
    LoadOutcome,
    StaffingBandTables,
    StaffingPolicy,
    band_tables_id,
    policy_on,
)

GUANGDONG = json.loads(
    (
        Path(__file__).resolve().parents[2] / "policy" / "staffing-bands-guangdong-2019.json"
    ).read_text(encoding="utf-8")
)


@pytest.fixture()
def policy() -> StaffingPolicy:
    return StaffingPolicy.parse(GUANGDONG)


@pytest.mark.parametrize(
    ("households", "minimum"),
    [
        (0, 2),
        (1, 2),
        (2999, 2),
        (3000, 4),
        (3001, 4),
        (4999, 4),
        (5000, 6),
        (7999, 6),
        (8000, 10),
        (8001, 10),
        (100000, 10),
    ],
)
def test_county_bands_take_the_higher_minimum_on_an_edge(
    policy: StaffingPolicy, households: int, minimum: int
) -> None:
    assert policy.county.minimum_for(households) == minimum


@pytest.mark.parametrize(
    ("households", "minimum"),
    [(0, 2), (299, 2), (300, 4), (301, 4), (599, 4), (600, 6), (601, 6)],
)
def test_township_bands(policy: StaffingPolicy, households: int, minimum: int) -> None:
    assert policy.township.minimum_for(households) == minimum


def test_villages_need_one_and_more_than_two_is_for_review(policy: StaffingPolicy) -> None:
    assert (policy.village_minimum, policy.village_review_above) == (1, 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"county": []}, "county"),
        ({"county": [{"households_from": 1, "minimum": 2}]}, "county"),
        (
            {
                "county": [
                    {"households_from": 0, "minimum": 2},
                    {"households_from": 0, "minimum": 3},
                ]
            },
            "county",
        ),
        (
            {
                "county": [
                    {"households_from": 0, "minimum": 4},
                    {"households_from": 10, "minimum": 3},
                ]
            },
            "county",
        ),
        ({"township": [{"households_from": 0, "minimum": -1}]}, "township[0]"),
        ({"township": [{"from": 0}]}, "township[0]"),
        ({"village": {"minimum": 3, "review_above": 2}}, "village"),
        ({"effective_from": "soon"}, "effective_from"),
        ({"name": ""}, "name"),
        ({"name": ["a list"]}, "name"),
        ({"village": [1, 2]}, "village"),
        ({"village": {"minimum": True, "review_above": 2}}, "village"),
        ({"effective_from": 20190104}, "effective_from"),
        ({"county": [{"households_from": 0, "minimum": 2**40}]}, "county[0]"),
        ({"county": [{"households_from": n, "minimum": 2} for n in range(51)]}, "county"),
    ],
)
def test_malformed_tables_are_refused(change: dict, field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        StaffingPolicy.parse({**GUANGDONG, **change})
    assert refused.value.field == field


def test_another_provinces_table_is_data(policy: StaffingPolicy) -> None:
    other = StaffingPolicy.parse(
        {
            **GUANGDONG,
            "name": "Another province 2027",
            "effective_from": "2027-01-01",
            "county": [
                {"households_from": 0, "minimum": 3},
                {"households_from": 2000, "minimum": 5},
            ],
        }
    )
    assert other.county.minimum_for(2000) == 5
    assert policy_on([policy, other], dt.date(2026, 12, 31)) is policy
    assert policy_on([policy, other], dt.date(2027, 1, 1)) is other
    assert policy_on([policy, other], dt.date(2018, 1, 1)) is None


# The band tables as events ----------------------------------------------------------------

PROVINCE_APPROVER = Provenance(Actor("approver-44", Role.APPROVER, "44"))
SUPERVISOR = Provenance(Actor("supervisor-44", Role.SUPERVISOR, "44"))
CLERK = Provenance(Actor("clerk-1", Role.INTAKE_CLERK, "440103"))
SOURCE = "粤民发 notice of 2019-01-04"


def stricter(policy: StaffingPolicy) -> StaffingPolicy:
    return StaffingPolicy.parse({**GUANGDONG, "county": [{"households_from": 0, "minimum": 5}]})


def new_tables() -> StaffingBandTables:
    return StaffingBandTables.open(provenance=PROVINCE_APPROVER)


def kinds(tables: StaffingBandTables) -> list[str]:
    return [type(e).__name__ for e in tables.collect_events()]


def test_one_stream_per_province() -> None:
    assert new_tables().id == band_tables_id() == band_tables_id("44")
    assert band_tables_id("45") != band_tables_id("44")


def test_a_table_is_adopted_with_its_source(policy: StaffingPolicy) -> None:
    tables = new_tables()
    outcome = tables.load(table=policy, source=SOURCE, reason=None, provenance=SUPERVISOR)
    assert outcome is LoadOutcome.ADOPTED
    assert kinds(tables) == ["Opened", "BandTableAdopted"]
    version = tables.current(policy.effective_from)
    assert version is not None
    assert (version.revision, version.source, version.actor) == (1, SOURCE, "supervisor-44")
    assert version.corrects is None and tables.tables() == [policy]


def test_the_same_table_again_records_nothing(policy: StaffingPolicy) -> None:
    tables = new_tables()
    tables.load(table=policy, source=SOURCE, reason=None, provenance=SUPERVISOR)
    tables.collect_events()
    again = StaffingPolicy.parse(dict(GUANGDONG))  # equal, not the same object
    outcome = tables.load(table=again, source="another copy", reason=None, provenance=SUPERVISOR)
    assert outcome is LoadOutcome.UNCHANGED
    assert kinds(tables) == []
    assert [v.revision for v in tables.history()] == [1]


def test_a_changed_table_for_the_same_date_is_a_correction(policy: StaffingPolicy) -> None:
    tables = new_tables()
    tables.load(table=policy, source=SOURCE, reason=None, provenance=SUPERVISOR)
    adopted = tables.current(policy.effective_from)
    assert adopted is not None
    tables.collect_events()
    outcome = tables.load(
        table=stricter(policy),
        source=SOURCE + ", erratum",
        reason="the county minimum was misprinted",
        provenance=PROVINCE_APPROVER,
    )
    assert outcome is LoadOutcome.CORRECTED
    assert kinds(tables) == ["BandTableCorrected"]
    corrected = tables.current(policy.effective_from)
    assert corrected is not None
    assert (corrected.revision, corrected.corrects) == (2, 1)
    assert corrected.reason == "the county minimum was misprinted"
    # nothing overwritten: both versions, and the tables as known before the correction
    assert [v.revision for v in tables.history()] == [1, 2]
    assert tables.tables() == [stricter(policy)]
    assert tables.tables(known_at=adopted.recorded_at) == [policy]
    assert tables.tables(known_at=adopted.recorded_at - dt.timedelta(seconds=1)) == []


def test_refusals_record_nothing(policy: StaffingPolicy) -> None:
    with pytest.raises(PolicyAuthorityOnly) as refused:
        StaffingBandTables.open(provenance=CLERK)
    assert refused.value.field == "actor.role"
    tables = new_tables()
    tables.collect_events()
    with pytest.raises(PolicyAuthorityOnly):
        tables.load(table=policy, source=SOURCE, reason=None, provenance=CLERK)
    with pytest.raises(InvalidValue) as no_source:
        tables.load(table=policy, source="  ", reason=None, provenance=SUPERVISOR)
    assert no_source.value.field == "source"
    with pytest.raises(NoBandTableToCorrect):
        tables.correct(table=policy, source=SOURCE, reason="why", provenance=SUPERVISOR)
    assert kinds(tables) == []
    tables.adopt(table=policy, source=SOURCE, provenance=SUPERVISOR)
    tables.collect_events()
    with pytest.raises(BandTableAdoptedAlready) as twice:
        tables.adopt(table=stricter(policy), source=SOURCE, provenance=SUPERVISOR)
    assert twice.value.field == "effective_from"
    with pytest.raises(CorrectionChangesNothing):
        tables.correct(table=policy, source=SOURCE, reason="why", provenance=SUPERVISOR)
    with pytest.raises(InvalidValue) as no_reason:
        tables.load(table=stricter(policy), source=SOURCE, reason=None, provenance=SUPERVISOR)
    assert no_reason.value.field == "reason"
    with pytest.raises(PolicyAuthorityOnly):
        tables.correct(table=stricter(policy), source=SOURCE, reason="why", provenance=CLERK)
    assert kinds(tables) == []
    assert [v.revision for v in tables.history()] == [1]


def test_a_later_effective_date_is_another_adoption(policy: StaffingPolicy) -> None:
    tables = new_tables()
    tables.load(table=policy, source=SOURCE, reason=None, provenance=SUPERVISOR)
    later = StaffingPolicy.parse({**GUANGDONG, "name": "2027", "effective_from": "2027-01-01"})
    assert (
        tables.load(table=later, source="2027 notice", reason=None, provenance=SUPERVISOR)
        is LoadOutcome.ADOPTED
    )
    assert tables.tables() == [policy, later]
    assert policy_on(tables.tables(), dt.date(2026, 12, 31)) == policy
