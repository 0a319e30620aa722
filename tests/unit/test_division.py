"""The division register's rules: existence at a date, renames, merges, abolitions, and what
a published list implies."""

import datetime as dt

import pytest

from domain.division import (
    Division,
    DivisionEntry,
    ListedDivision,
    MappingRegister,
    check_division_exists,
    division_id,
    plan_register_changes,
)
from domain.errors import DivisionChange, InvalidIdentifier, UnknownDivision
from domain.identifiers import DivisionLevel
from domain.provenance import Actor, Provenance, Role

BY_SYSTEM = Provenance(Actor("relief-import", Role.SYSTEM, "44"), reason="NBS list")
START = dt.date(2000, 1, 1)


def village(code: str = "440103001001", name: str = "测试村") -> Division:
    return Division.establish(code=code, name=name, effective_from=START, provenance=BY_SYSTEM)


def register(*divisions: Division) -> MappingRegister:
    return MappingRegister(entry for d in divisions for entry in d.entries())


class TestEstablished:
    def test_a_division_takes_level_and_parent_from_its_code(self) -> None:
        division = village()
        assert division.id == division_id("440103001001")
        assert division.level is DivisionLevel.VILLAGE
        assert division.parent == "440103001"
        assert (
            Division.establish(
                code="44", name="广东省", effective_from=START, provenance=BY_SYSTEM
            ).parent
            is None
        )

    def test_it_exists_from_its_date_on(self) -> None:
        reg = register(village())
        assert check_division_exists(reg, "440103001001", dt.date(2026, 1, 1)).name == "测试村"
        with pytest.raises(UnknownDivision) as refused:
            check_division_exists(reg, "440103001001", dt.date(1999, 12, 31), field="place")
        assert refused.value.field == "place"

    def test_an_unknown_code_is_refused_by_name(self) -> None:
        with pytest.raises(UnknownDivision) as refused:
            check_division_exists(register(village()), "440103001002", START, field="village")
        assert refused.value.rule == "unknown-division"
        assert "440103001002" in refused.value.message

    def test_a_malformed_code_stays_an_identifier_fault(self) -> None:
        with pytest.raises(InvalidIdentifier):
            check_division_exists(register(), "44010300100X", START, field="village")


class TestChanges:
    def test_a_renamed_division_answers_each_name_in_its_period(self) -> None:
        division = village()
        division.rename(name="新名村", effective_from=dt.date(2020, 7, 1), provenance=BY_SYSTEM)
        reg = register(division)
        assert reg.lookup("440103001001", dt.date(2020, 6, 30)).name == "测试村"  # type: ignore[union-attr]
        assert reg.lookup("440103001001", dt.date(2020, 7, 1)).name == "新名村"  # type: ignore[union-attr]
        assert division.name == "新名村"

    def test_a_merged_division_ends_on_its_date(self) -> None:
        division = village()
        division.merge_into(
            successor="440103001002", effective_from=dt.date(2021, 1, 1), provenance=BY_SYSTEM
        )
        reg = register(division)
        assert reg.lookup("440103001001", dt.date(2020, 12, 31)) is not None
        with pytest.raises(UnknownDivision):
            check_division_exists(reg, "440103001001", dt.date(2021, 1, 1))
        assert division.merged_into == "440103001002"

    def test_a_division_merges_only_into_another_of_its_level(self) -> None:
        with pytest.raises(DivisionChange):
            village().merge_into(
                successor="440103001", effective_from=dt.date(2021, 1, 1), provenance=BY_SYSTEM
            )
        with pytest.raises(DivisionChange):
            village().merge_into(
                successor="440103001001", effective_from=dt.date(2021, 1, 1), provenance=BY_SYSTEM
            )

    def test_an_abolished_division_takes_no_further_change(self) -> None:
        division = village()
        division.abolish(effective_from=dt.date(2022, 1, 1), provenance=BY_SYSTEM)
        assert register(division).lookup("440103001001", dt.date(2022, 1, 1)) is None
        assert register(division).lookup("440103001001", dt.date(2021, 12, 31)) is not None
        with pytest.raises(DivisionChange):
            division.rename(name="又名", effective_from=dt.date(2023, 1, 1), provenance=BY_SYSTEM)
        with pytest.raises(DivisionChange):
            division.abolish(effective_from=dt.date(2023, 1, 1), provenance=BY_SYSTEM)

    def test_a_change_takes_effect_after_the_current_name_began(self) -> None:
        with pytest.raises(DivisionChange) as refused:
            village().abolish(effective_from=START, provenance=BY_SYSTEM)
        assert refused.value.field == "effective_from"

    def test_renaming_to_the_same_name_is_refused(self) -> None:
        with pytest.raises(DivisionChange):
            village().rename(
                name="测试村", effective_from=dt.date(2020, 1, 1), provenance=BY_SYSTEM
            )


def entry(code: str, name: str, valid_to: dt.date | None = None) -> DivisionEntry:
    return DivisionEntry(code, name, DivisionLevel(len(code)), None, START, valid_to)


class TestPlan:
    LISTED = (
        ListedDivision("440103001001", "甲村"),
        ListedDivision("44", "广东省"),
        ListedDivision("440103001", "甲街道"),
    )

    def test_an_empty_register_establishes_every_listed_division_parents_first(self) -> None:
        plan = plan_register_changes({}, self.LISTED)
        assert [d.code for d in plan.establish] == ["44", "440103001", "440103001001"]
        assert not plan.rename and not plan.abolish

    def test_the_same_list_again_plans_nothing(self) -> None:
        current = {d.code: entry(d.code, d.name) for d in self.LISTED}
        assert plan_register_changes(current, self.LISTED).empty

    def test_a_newer_list_plans_only_its_differences(self) -> None:
        current = {d.code: entry(d.code, d.name) for d in self.LISTED}
        current["440103001002"] = entry("440103001002", "乙村")
        current["45"] = entry("45", "广西壮族自治区")  # another province: the list says nothing
        newer = (
            ListedDivision("44", "广东省"),
            ListedDivision("440103001", "甲街道"),
            ListedDivision("440103001001", "甲社区"),
            ListedDivision("440103001003", "丙村"),
        )
        plan = plan_register_changes(current, newer)
        assert [d.code for d in plan.establish] == ["440103001003"]
        assert [(d.code, d.name) for d in plan.rename] == [("440103001001", "甲社区")]
        assert plan.abolish == ("440103001002",)

    def test_a_listed_code_the_register_ended_is_not_re_established(self) -> None:
        current = {"440103001001": entry("440103001001", "甲村", valid_to=dt.date(2020, 1, 1))}
        plan = plan_register_changes(current, [ListedDivision("440103001001", "甲村")])
        assert plan.empty and plan.ended == ("440103001001",)

    def test_a_malformed_listed_code_is_refused(self) -> None:
        with pytest.raises(InvalidIdentifier):
            plan_register_changes({}, [ListedDivision("4401030010", "甲")])
