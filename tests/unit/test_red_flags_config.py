"""Red-flag thresholds: defaults, the shipped file, validation and the fingerprint."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from projections.red_flags.config import (
    DEFAULT_CONFIG_FILE,
    ConfigError,
    RedFlagsConfig,
    load_config,
    parse_config,
)


def test_the_shipped_file_states_the_defaults() -> None:
    shipped = load_config(DEFAULT_CONFIG_FILE)
    defaults = RedFlagsConfig()
    assert shipped.as_document() | {"name": "defaults"} == defaults.as_document()
    assert shipped.max_home_visits_per_day == 8
    assert shipped.approval_z == Decimal("3.09")


def test_missing_keys_take_the_defaults_and_decimals_stay_exact() -> None:
    config = parse_config({"approval_z": "2.5", "bunching_alpha": Decimal("0.01")})
    assert config.approval_z == Decimal("2.5")
    assert config.bunching_alpha == Decimal("0.01")
    assert config.max_home_visits_per_day == RedFlagsConfig().max_home_visits_per_day


def test_a_file_is_read_with_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"name": "t", "split_band": 0.1}).replace("0.1", "0.10"))
    assert load_config(path).split_band == Decimal("0.10")
    assert load_config(tmp_path / "absent.json") == RedFlagsConfig()


@pytest.mark.parametrize(
    ("document", "fault"),
    [
        ({"max_home_visit_per_day": 3}, "unknown key"),  # a typo is not a default
        ({"max_home_visits_per_day": 0}, "max_home_visits_per_day"),
        ({"max_home_visits_per_day": True}, "max_home_visits_per_day"),
        ({"approval_z": 3.09}, "approval_z"),  # a binary float: write it exactly
        ({"approval_min_difference": "1.5"}, "approval_min_difference"),
        ({"recurring_programmes": ["dibao", "temporary"]}, "recurring_programmes"),
        # The local standards were configuration once: now events, and the key says where.
        ({"lines": []}, "relief standards load"),
        ([], "JSON object"),
    ],
)
def test_malformed_configuration_is_refused_naming_the_key(document: object, fault: str) -> None:
    with pytest.raises(ConfigError, match=fault):
        parse_config(document)


def test_the_fingerprint_follows_every_threshold() -> None:
    base = RedFlagsConfig()
    assert base.fingerprint == RedFlagsConfig().fingerprint
    assert base.fingerprint != RedFlagsConfig(max_home_visits_per_day=9).fingerprint
    changed = RedFlagsConfig(bunching_band=Decimal("0.05"))
    assert changed.fingerprint != base.fingerprint
    assert parse_config(changed.as_document()) == changed  # round trip


def test_tender_limits_are_per_purchaser_with_their_source() -> None:
    from projections.red_flags.config import parse_config

    config = parse_config(
        {
            "split_threshold": "1000000",
            "tender_limits": [
                {"division": "4401", "limit": "500000", "source": "Guangzhou catalogue 2024"},
                {"division": "440104", "limit": "300000", "source": "Yuexiu notice"},
            ],
        }
    )
    assert config.limit_for("440103") == (Decimal(500000), "Guangzhou catalogue 2024")
    assert config.limit_for("440104") == (Decimal(300000), "Yuexiu notice")
    assert config.limit_for("440305")[0] == Decimal(1000000)
    assert "split_threshold" in config.limit_for("44")[1]
    assert parse_config(config.as_document()) == config  # round trip, fingerprinted
    for bad in (
        [{"division": "4401", "limit": "500000"}],  # no source
        [{"division": "440", "limit": "1", "source": "x"}],
        [{"division": "4401", "limit": "0", "source": "x"}],
        [{"division": "4401", "limit": "1", "source": "x"}] * 2,
        "4401",
    ):
        with pytest.raises(ConfigError):
            parse_config({"tender_limits": bad})


def test_the_household_review_grace_is_bounded() -> None:
    from projections.red_flags.config import parse_config

    assert parse_config({}).household_review_grace_days == 31
    assert parse_config({"household_review_grace_days": 0}).household_review_grace_days == 0
    for bad in (-1, 4000, "31"):
        with pytest.raises(ConfigError):
            parse_config({"household_review_grace_days": bad})
