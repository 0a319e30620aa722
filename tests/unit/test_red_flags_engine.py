"""The red-flag engine's pure parts: the rule catalogue, keys, ids, bands."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from domain.case import ReliefCase
from domain.person import Person
from domain.staff import StaffMember
from projections.red_flags.config import RedFlagsConfig
from projections.red_flags.engine import (
    ALERT_NAMESPACE,
    SEVERITIES,
    SUBJECT_KINDS,
    Engine,
    alert_id,
    key_part,
    majority,
    unkey_part,
)
from projections.red_flags.facts import FactStore, band_of
from projections.red_flags.projection import (
    ALL_RULES,
    RedFlagsProjection,
    handled_events,
    rule_catalogue,
)


def test_every_rule_is_named_documented_and_triggered() -> None:
    names = [rule.name for rule in ALL_RULES]
    assert len(set(names)) == len(names) == 22
    handled = set(handled_events())
    for rule in ALL_RULES:
        assert rule.severity in SEVERITIES, rule
        assert rule.subject_kind in SUBJECT_KINDS, rule
        assert len(rule.description) > 40, rule
        assert rule.events() and rule.events() <= handled, rule
    assert [entry["rule"] for entry in rule_catalogue()] == names


def test_the_projection_reads_the_events_the_rules_need() -> None:
    topics = set(RedFlagsProjection.topics())
    for event in (
        ReliefCase.PaymentRecorded,
        ReliefCase.RecordCorrected,
        Person.Died,
        Person.CaseClaimed,
        StaffMember.InterestsDeclared,
    ):
        assert any(topic.endswith(event.__qualname__) for topic in topics), event
    assert not any(topic.endswith("Trained") for topic in topics)  # nothing reads trainings


def test_rule_names_are_unique_in_an_engine() -> None:
    config = RedFlagsConfig()
    rules = [ALL_RULES[0](config), ALL_RULES[0](config)]
    with pytest.raises(ValueError, match="share a name"):
        Engine(FactStore(config), rules)


@pytest.mark.parametrize("text", ["officer-1", "a|2026-01-01", "100%|x", "%7C", "|"])
def test_key_parts_escape_the_separator_and_round_trip(text: str) -> None:
    assert "|" not in key_part(text)
    assert unkey_part(key_part(text)) == text


def test_alert_ids_depend_on_rule_and_key_only() -> None:
    assert alert_id("r", "k") == uuid.uuid5(ALERT_NAMESPACE, "r|k") == alert_id("r", "k")
    assert alert_id("r", "k") != alert_id("s", "k")


def test_majority_breaks_ties_deterministically() -> None:
    assert majority(["440104", "440103", "440104", None]) == "440104"
    assert majority(["440104", "440103"]) == majority(["440103", "440104"]) == "440103"
    assert majority([None, None]) is None


def test_income_bands_around_the_line() -> None:
    line, band = Decimal(1000), Decimal("0.10")
    assert band_of(Decimal("899.99"), line, band) is None
    assert band_of(Decimal(900), line, band) == "under"
    assert band_of(Decimal("999.99"), line, band) == "under"
    assert band_of(Decimal(1000), line, band) == "over"
    assert band_of(Decimal("1099.99"), line, band) == "over"
    assert band_of(Decimal(1100), line, band) is None
    assert band_of(Decimal(950), None, band) is None
