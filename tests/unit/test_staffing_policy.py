"""Staffing minimums by caseload band (DOMAIN.md), as policy data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from domain.errors import InvalidValue
from domain.staffing import StaffingPolicy, policy_on

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
