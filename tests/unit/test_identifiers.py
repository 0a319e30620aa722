import datetime as dt

import pytest

from domain.errors import InvalidIdentifier
from domain.identifiers import (
    DivisionCode,
    DivisionLevel,
    Sex,
    mask_resident_id,
    parse_division_code,
    parse_resident_id,
    resident_id_check_character,
)
from tests.factories import resident_id


class TestDivisionCode:
    @pytest.mark.parametrize("code", ["44", "4401", "440103", "440103001", "440103001001"])
    def test_every_level_validates(self, code: str) -> None:
        assert DivisionCode(code).level is DivisionLevel(len(code))

    def test_enclosing_divisions_follow_the_code_hierarchy(self) -> None:
        village = DivisionCode("440103001001")
        assert village.county == DivisionCode("440103")
        assert village.at(DivisionLevel.TOWNSHIP).code == "440103001"
        assert village.at(DivisionLevel.PREFECTURE).code == "4401"
        assert DivisionCode("4401").contains(village)
        assert not DivisionCode("4403").contains(village)

    @pytest.mark.parametrize("code", ["441900", "441900003", "441900003001", "442000101001"])
    def test_cities_without_counties_number_townships_under_county_segment_00(
        self, code: str
    ) -> None:
        # 东莞 4419 and 中山 4420 have no counties: their townships are 4419 00 NNN.
        assert DivisionCode(code).county == DivisionCode(code[:6])

    def test_a_county_has_no_enclosing_village(self) -> None:
        with pytest.raises(InvalidIdentifier) as refused:
            DivisionCode("440103").at(DivisionLevel.VILLAGE)
        assert refused.value.fault == "level"

    @pytest.mark.parametrize(
        ("code", "fault"),
        [
            ("44010A", "characters"),
            ("４４0103", "characters"),
            ("", "characters"),
            ("44010", "length"),
            ("4401030010011", "length"),
            ("990103", "province"),
            ("440003", "segment"),
            ("440000", "segment"),
            ("440103000", "segment"),
            ("440103001000", "segment"),
        ],
    )
    def test_malformed_codes_are_refused_naming_the_fault(self, code: str, fault: str) -> None:
        with pytest.raises(InvalidIdentifier) as refused:
            parse_division_code(code, field="division")
        assert refused.value.fault == fault
        assert refused.value.field == "division"

    def test_a_required_level_is_enforced(self) -> None:
        with pytest.raises(InvalidIdentifier) as refused:
            parse_division_code("440103001", level=DivisionLevel.VILLAGE)
        assert refused.value.fault == "level"
        assert "12 digits" in refused.value.message


class TestResidentId:
    @pytest.mark.parametrize("number", ["11010519491231002X", "440103198503071234"])
    def test_the_standards_examples_validate(self, number: str) -> None:
        assert parse_resident_id(number).number == number

    def test_check_character_follows_iso_7064_mod_11_2(self) -> None:
        assert resident_id_check_character("11010519491231002") == "X"
        assert resident_id_check_character("44010319850307123") == "4"
        # weighted sum mod 11 == 1 maps to 0
        body = next(
            f"44010319850307{n:03d}"
            for n in range(1000)
            if resident_id_check_character(f"44010319850307{n:03d}") == "0"
        )
        assert parse_resident_id(body + "0")

    def test_lower_case_x_is_accepted_and_normalised(self) -> None:
        assert parse_resident_id("11010519491231002x").number == "11010519491231002X"

    def test_birth_date_and_sex_are_read_from_the_number(self) -> None:
        person = parse_resident_id("11010519491231002X")
        assert person.birth_date == dt.date(1949, 12, 31)
        assert person.sex is Sex.FEMALE  # sequence 002 is even
        assert parse_resident_id("440103198503071234").sex is Sex.MALE  # 123 is odd

    @pytest.mark.parametrize(
        ("number", "fault"),
        [
            ("44010319850307123", "length"),
            ("4401031985030712345", "length"),
            ("44010319850307123A", "characters"),
            ("4401031985O3071234", "characters"),
            ("990103198503071234", "address-code"),
            ("440103198502301234", "birth-date"),  # 30 February
            ("440103185003071234", "birth-date"),  # 1850
            ("440103198503071235", "check-character"),
        ],
    )
    def test_malformed_numbers_are_refused_naming_the_fault(self, number: str, fault: str) -> None:
        with pytest.raises(InvalidIdentifier) as refused:
            parse_resident_id(number, field="applicant_id")
        assert refused.value.fault == fault
        assert refused.value.field == "applicant_id"

    def test_a_birth_date_after_today_is_refused(self) -> None:
        future = resident_id(born="20301231")
        with pytest.raises(InvalidIdentifier) as refused:
            parse_resident_id(future, today=dt.date(2026, 11, 27))
        assert refused.value.fault == "birth-date"

    def test_masking_keeps_only_the_first_and_last_four(self) -> None:
        assert mask_resident_id("440103198503071234") == "4401**********1234"
        assert "198503" not in repr(parse_resident_id("440103198503071234"))
