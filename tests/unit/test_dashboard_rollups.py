"""The arithmetic of the dashboards' rolled-up rows (projections/caseload.py rollup) and the
staffing rows' answers."""

from __future__ import annotations

from dataclasses import fields

from projections.caseload import LEVELS, rollup, rollup_source
from projections.staffing_view import DivisionStaffing, division_row


def test_a_village_change_counts_once_at_every_level() -> None:
    got = rollup({("440103001001", "dibao", "approved"): (2, 1)})
    assert got == {
        ("province", "44", "dibao", "approved"): (2, 1),
        ("prefecture", "4401", "dibao", "approved"): (2, 1),
        ("county", "440103", "dibao", "approved"): (2, 1),
        ("township", "440103001", "dibao", "approved"): (2, 1),
        ("village", "440103001001", "dibao", "approved"): (2, 1),
    }


def test_villages_add_up_in_their_shared_divisions_only() -> None:
    got = rollup(
        {
            ("440103001001", "dibao", "approved"): (3, 2),
            ("440103001002", "dibao", "approved"): (-1, -1),
            ("440104002001", "dibao", "approved"): (5, 4),
            ("440103001001", "tekun", "approved"): (7, 7),
        }
    )
    assert got[("township", "440103001", "dibao", "approved")] == (2, 1)
    assert got[("county", "440103", "dibao", "approved")] == (2, 1)
    assert got[("county", "440104", "dibao", "approved")] == (5, 4)
    assert got[("prefecture", "4401", "dibao", "approved")] == (7, 5)
    assert got[("province", "44", "tekun", "approved")] == (7, 7)
    assert got[("village", "440103001002", "dibao", "approved")] == (-1, -1)


def test_a_group_passed_through_keeps_its_rows_at_every_level() -> None:
    got = rollup({("440103001001", "dibao", "received"): (0, 0)})
    assert len(got) == len(LEVELS)
    assert set(got.values()) == {(0, 0)}


def test_a_level_within_a_narrower_division_reads_the_division_level() -> None:
    assert rollup_source(None, "county") == "county"
    assert rollup_source("4401", "county") == "county"
    assert rollup_source("440103001", "county") == "township"
    assert rollup_source("440103001001", "province") == "village"
    assert rollup_source("44010300", "prefecture") == "township"


def test_a_staffing_row_answers_every_field_and_its_staff() -> None:
    row = DivisionStaffing("440103", "county", 300, 4, 2, 1, 1, "荔湾区")
    answered = division_row(row)
    assert answered == {**{f.name: getattr(row, f.name) for f in fields(row)}, "staff": 3}
