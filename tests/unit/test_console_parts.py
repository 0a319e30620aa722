"""The console's small parts: its message catalogue, who may mint a development token, and the
division levels of the drill-down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.console import i18n
from api.console.divisions import level_of, next_level
from api.console.session import csrf_for, dev_sign_in_allowed
from domain.case import CaseStatus, Programme
from infra.settings import Settings

TEMPLATES = Path(i18n.__file__).parent / "templates"


def test_every_text_of_the_templates_is_in_both_languages() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_]+)'\)", template.read_text()))
    used |= {p.value for p in Programme} | {s.value for s in CaseStatus}
    missing = {key for key in used if set(i18n.MESSAGES.get(key, {})) != set(i18n.LANGUAGES)}
    assert not missing, missing


def test_dev_sign_in_only_without_an_identity_provider_and_from_this_machine(
    tmp_path: Path,
) -> None:
    embedded = Settings(data_dir=tmp_path)
    assert dev_sign_in_allowed(embedded, "127.0.0.1")
    assert dev_sign_in_allowed(embedded, "::1")
    assert not dev_sign_in_allowed(embedded, "10.1.2.3")
    assert not dev_sign_in_allowed(embedded, "testclient")
    assert not dev_sign_in_allowed(embedded, None)
    key = tmp_path / "idp.pem"
    key.write_text("")
    assert not dev_sign_in_allowed(
        Settings(data_dir=tmp_path, jwt_public_key_path=key), "127.0.0.1"
    )
    assert not dev_sign_in_allowed(
        Settings(data_dir=tmp_path, jwt_jwks_url="https://idp.example/jwks"), "127.0.0.1"
    )


def test_csrf_token_belongs_to_its_session() -> None:
    assert csrf_for("a") == csrf_for("a") != csrf_for("b")


@pytest.mark.parametrize(
    ("code", "level", "down"),
    [
        ("44", "province", "prefecture"),
        ("4401", "prefecture", "county"),
        ("440103", "county", "township"),
        ("440103001", "township", "village"),
        ("440103001001", "village", None),
    ],
)
def test_drill_down_levels(code: str, level: str, down: str | None) -> None:
    assert level_of(code) == level
    assert next_level(level) == down
