"""Which recipes a batch's notification refreshes (api/refresh.py)."""

from __future__ import annotations

from api.refresh import Change, Recipe


def recipe(division: str | None = None, tables: dict[str, tuple[str, ...]] | None = None) -> Recipe:
    return Recipe({}, frozenset({"staffing", "divisions"}), tables or {}, division, 0.0)


def test_a_notification_names_the_projection_the_tables_and_the_counties() -> None:
    change = Change.told("rm_staffing_g12 staffing_divisions,staff_member 440103,44")
    assert change == Change(
        "staffing", frozenset({"staffing_divisions", "staff_member"}), frozenset({"440103", "44"})
    )
    assert Change.told("rm_red_flags_g1 alerts *").counties == frozenset({"*"})


def test_a_province_answer_is_refreshed_by_any_batch_of_a_projection_it_reads() -> None:
    assert recipe().moved_by(Change.told("rm_staffing_g1 staffing_villages 440105"))
    assert recipe().moved_by(Change.told("rm_divisions_g3 divisions *"))
    assert not recipe().moved_by(Change.told("rm_caseload_g1 caseload_rollup 440105"))


def test_a_county_answer_is_refreshed_by_batches_writing_its_county_or_unscoped_tables() -> None:
    county, township = recipe("440103"), recipe("440103001")
    elsewhere = Change.told("rm_staffing_g1 staffing_divisions,active_household 440104,44")
    assert not county.moved_by(elsewhere) and not township.moved_by(elsewhere)
    there = Change.told("rm_staffing_g1 staffing_divisions 440104,440103")
    assert county.moved_by(there) and township.moved_by(there)
    assert county.moved_by(Change.told("rm_staffing_g1 staff_member,staff_assignment *"))
    prefecture = recipe("4401")
    assert prefecture.moved_by(elsewhere)
    assert not prefecture.moved_by(Change.told("rm_staffing_g1 staffing_divisions 440201,44"))


def test_an_answer_reading_some_tables_is_refreshed_by_batches_writing_them() -> None:
    alerts = Recipe({}, frozenset({"red_flags"}), {"red_flags": ("alerts",)}, None, 0.0)
    assert not alerts.moved_by(Change.told("rm_red_flags_g1 rf_record,rf_case *"))
    assert alerts.moved_by(Change.told("rm_red_flags_g1 rf_record,alerts *"))
