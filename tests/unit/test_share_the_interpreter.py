"""A serving API process shares the interpreter lock sooner than Python's default."""

from __future__ import annotations

import sys

import pytest

from api.app import share_the_interpreter
from infra.settings import Settings, SettingsError


def test_the_switch_interval_is_the_setting() -> None:
    before = sys.getswitchinterval()
    try:
        share_the_interpreter(Settings.from_env({"RELIEF_GIL_SWITCH_US": "250"}).gil_switch_us)
        assert sys.getswitchinterval() == pytest.approx(0.000_25)
    finally:
        sys.setswitchinterval(before)


def test_the_default_is_a_tenth_of_pythons_and_nonsense_is_refused() -> None:
    assert Settings.from_env({}).gil_switch_us == 500
    with pytest.raises(SettingsError, match="RELIEF_GIL_SWITCH_US"):
        Settings.from_env({"RELIEF_GIL_SWITCH_US": "0"})
    with pytest.raises(SettingsError, match="RELIEF_GIL_SWITCH_US"):
        Settings.from_env({"RELIEF_GIL_SWITCH_US": "fast"})
