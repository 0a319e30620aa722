"""The local minimum-living standards as events: set, corrected, unchanged, refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from domain.errors import (
    InvalidIdentifier,
    StandardCorrection,
    StandardsAuthorityOnly,
    StandardTerms,
)
from domain.living_standards import LivingStandard, standard_id
from domain.provenance import Actor, Provenance, Role

APPROVER = Provenance(Actor("approver-1", Role.APPROVER, "440103"))
SUPERVISOR = Provenance(Actor("supervisor-1", Role.SUPERVISOR, "44"), reason="revised notice")
JULY = dt.date(2024, 7, 1)


def opened(division: str = "440103", programme: str = "dibao") -> LivingStandard:
    return LivingStandard.open(division=division, programme=programme, provenance=APPROVER)


def test_a_standard_is_set_with_its_source_and_its_id_follows_division_and_programme() -> None:
    standard = opened()
    assert standard.id == standard_id("440103", "dibao") != standard_id("440103", "tekun")
    assert standard.set_standard(
        effective_from=JULY, monthly_amount="1120", source="notice 5", provenance=APPROVER
    )
    events = standard.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "StandardSet"]
    set_ = events[1]
    assert isinstance(set_, LivingStandard.StandardSet)
    assert (set_.division, set_.programme, set_.effective_from) == ("440103", "dibao", JULY)
    assert (set_.monthly_amount, set_.currency, set_.source) == (
        Decimal("1120.00"),
        "CNY",
        "notice 5",
    )
    assert set_.provenance == APPROVER


def test_the_same_figure_again_records_nothing() -> None:
    standard = opened()
    standard.set_standard(
        effective_from=JULY, monthly_amount="1120", source="notice 5", provenance=APPROVER
    )
    standard.collect_events()
    assert not standard.set_standard(
        effective_from=JULY, monthly_amount="1120.00", source="notice 5", provenance=APPROVER
    )
    assert standard.collect_events() == []


def test_another_figure_for_a_date_is_a_correction_naming_what_it_corrects() -> None:
    standard = opened()
    standard.set_standard(
        effective_from=JULY, monthly_amount="1120", source="notice 5", provenance=APPROVER
    )
    standard.set_standard(
        effective_from=dt.date(2025, 1, 1),
        monthly_amount="1150",
        source="notice 9",
        provenance=APPROVER,
    )
    with pytest.raises(StandardCorrection) as refused:
        standard.set_standard(
            effective_from=JULY, monthly_amount="1210", source="notice 5", provenance=APPROVER
        )
    assert refused.value.field == "reason"
    assert standard.set_standard(
        effective_from=JULY,
        monthly_amount="1210",
        source="notice 5",
        reason="1120 was a typing error",
        provenance=APPROVER,
    )
    # the supervisor's reason comes with their provenance
    assert standard.set_standard(
        effective_from=JULY, monthly_amount="1200", source="notice 5a", provenance=SUPERVISOR
    )
    events = standard.collect_events()
    corrections = [e for e in events if isinstance(e, LivingStandard.StandardCorrected)]
    assert [(c.monthly_amount, c.corrects, c.reason) for c in corrections] == [
        (Decimal("1210.00"), 2, "1120 was a typing error"),
        (Decimal("1200.00"), 4, "revised notice"),
    ]
    assert [v.version for v in standard.history] == [2, 3, 4, 5]
    assert standard.standard_on(dt.date(2024, 12, 31)).monthly_amount == Decimal(1200)
    assert standard.standard_on(dt.date(2025, 1, 1)).monthly_amount == Decimal(1150)
    assert standard.standard_on(dt.date(2024, 6, 30)) is None


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"monthly_amount": "0"}, StandardTerms, "monthly_amount"),
        ({"monthly_amount": "-5"}, StandardTerms, "monthly_amount"),
        ({"monthly_amount": "1120.555"}, StandardTerms, "monthly_amount"),
        ({"monthly_amount": "200000"}, StandardTerms, "monthly_amount"),
        ({"monthly_amount": 1120.5}, StandardTerms, "monthly_amount"),  # a float: not exact
        ({"source": "  "}, StandardTerms, "source"),
        ({"source": "x" * 501}, StandardTerms, "source"),
        ({"currency": "USD"}, StandardTerms, "currency"),
    ],
)
def test_malformed_figures_are_refused_naming_the_field(
    change: dict[str, object], error: type[Exception], field: str
) -> None:
    standard = opened()
    values: dict[str, object] = {"monthly_amount": "1120", "source": "notice 5"} | change
    with pytest.raises(error) as refused:
        standard.set_standard(effective_from=JULY, provenance=APPROVER, **values)  # type: ignore[arg-type]
    assert getattr(refused.value, "field", None) == field
    assert standard.collect_events()[1:] == []  # nothing but the opening


@pytest.mark.parametrize(
    ("division", "programme", "error", "field"),
    [
        ("440103001", "dibao", StandardTerms, "division"),  # a township publishes none
        ("440103001001", "tekun", StandardTerms, "division"),
        ("4401x", "dibao", InvalidIdentifier, "division"),
        ("440103", "temporary", StandardTerms, "programme"),
        ("440103", "pension", StandardTerms, "programme"),
    ],
)
def test_only_dibao_and_tekun_of_a_province_prefecture_or_county(
    division: str, programme: str, error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as refused:
        LivingStandard.open(division=division, programme=programme, provenance=APPROVER)
    assert getattr(refused.value, "field", None) == field


@pytest.mark.parametrize("role", [r for r in Role if r not in (Role.APPROVER, Role.SUPERVISOR)])
def test_only_an_approver_or_supervisor_sets_standards(role: Role) -> None:
    by = Provenance(Actor("someone", role, "440103"))
    with pytest.raises(StandardsAuthorityOnly):
        LivingStandard.open(division="440103", programme="dibao", provenance=by)
    standard = opened()
    with pytest.raises(StandardsAuthorityOnly) as refused:
        standard.set_standard(
            effective_from=JULY, monthly_amount="1120", source="notice 5", provenance=by
        )
    assert refused.value.field == "actor.role"
    for level in ("44", "4401"):  # the province and a prefecture publish standards too
        LivingStandard.open(division=level, programme="tekun", provenance=SUPERVISOR)


ENTRY = {
    "division": "440103",
    "programme": "dibao",
    "effective_from": "2024-07-01",
    "monthly_amount": "1120",
    "source": "notice 5",
}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, "standards"),
        ([], "standards"),
        ("440103,1120", "standards"),
        ([ENTRY, "x"], "standards[1]"),
        ([ENTRY | {"colour": "red"}], "standards[0]"),
        ([ENTRY | {"effective_from": "July"}], "standards[0].effective_from"),
        ([{k: v for k, v in ENTRY.items() if k != "source"}], "standards[0].source"),
        ([ENTRY | {"division": 440103}], "standards[0].division"),
        ([ENTRY, ENTRY | {"reason": 5}], "standards[1].reason"),
        ([ENTRY | {"reason": "bell \x07"}], "standards[0].reason"),
    ],
)
def test_a_malformed_standards_file_is_refused_naming_the_entry(
    document: object, field: str
) -> None:
    from domain.errors import InvalidValue
    from services.standards import standards_from_document

    with pytest.raises(InvalidValue) as refused:
        standards_from_document(document, APPROVER)
    assert refused.value.field == field


def test_a_standards_file_gives_one_command_per_entry_with_its_reason() -> None:
    from services.standards import standards_from_document

    commands = standards_from_document(
        {"standards": [ENTRY, ENTRY | {"programme": "tekun", "reason": "new notice"}]}, SUPERVISOR
    )
    assert [(c.programme, c.effective_from, c.reason) for c in commands] == [
        ("dibao", JULY, None),
        ("tekun", JULY, "new notice"),
    ]
    assert [c.provenance.reason for c in commands] == ["revised notice", "new notice"]
