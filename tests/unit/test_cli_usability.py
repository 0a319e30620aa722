"""The command line as a new user meets it: progress in logs, tokens from the right key."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from api import cli
from api.progress import ProgressBar
from infra.settings import SettingsError


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_is_plain_lines_without_carriage_returns() -> None:
    out = io.StringIO()  # not a TTY
    bar = ProgressBar("seed", 3, "households", out=out)
    for done in (1, 2, 3):
        bar(done)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines and lines[-1].startswith("seed [") and "3/3 households" in lines[-1]


def test_progress_on_a_terminal_redraws_one_line() -> None:
    out = Terminal()
    bar = ProgressBar("seed", 2, "households", out=out)
    bar(2)
    bar.close()
    assert out.getvalue().startswith("\r") and out.getvalue().endswith("\n")


def test_plain_progress_ends_with_the_final_count_even_when_throttled() -> None:
    out = io.StringIO()
    bar = ProgressBar("import", 100, "lines", out=out)
    bar(40)  # within the first interval: not written
    bar.close()
    assert "40/100 lines" in out.getvalue().splitlines()[-1]


@pytest.fixture()
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    record = tmp_path / "state" / "serving.json"
    monkeypatch.setattr(cli, "SERVING_RECORD", record)
    monkeypatch.delenv("RELIEF_DATA_DIR", raising=False)
    served = tmp_path / "served"
    served.mkdir()
    return record, served


def test_token_uses_the_serving_deployments_data_dir(
    homes: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    record, served = homes
    (served / "jwt-ed25519.pem").write_text("placeholder")  # existence is what is checked
    record.parent.mkdir(parents=True)
    record.write_text(
        json.dumps({"data_dir": str(served), "url": "http://127.0.0.1:8000", "pid": os.getpid()})
    )
    settings = cli.token_settings()
    assert settings.data_dir == served
    err = capsys.readouterr().err
    assert "http://127.0.0.1:8000" in err and str(served / "jwt-ed25519.pem") in err


def test_token_without_a_key_says_where_it_looked_and_makes_none(
    homes: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, served = homes
    monkeypatch.setenv("RELIEF_DATA_DIR", str(served))
    with pytest.raises(SettingsError, match=r"no development key at .*jwt-ed25519\.pem"):
        cli.token_settings()
    assert not (served / "jwt-ed25519.pem").exists()


def test_a_dead_servers_record_is_ignored(homes: tuple[Path, Path]) -> None:
    record, served = homes
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"data_dir": str(served), "url": "x", "pid": 2**22 + 12345}))
    assert cli.serving_data_dir() is None


def test_the_record_is_forgotten_at_shutdown_only_by_its_own_process(
    homes: tuple[Path, Path],
) -> None:
    from infra.settings import Settings

    record, served = homes
    cli.record_serving(Settings(data_dir=served), "http://127.0.0.1:8000")
    assert cli.serving_data_dir() == (served, "http://127.0.0.1:8000")
    record.write_text(json.dumps({"data_dir": str(served), "url": "x", "pid": 1}))
    cli.forget_serving()  # another process's record: kept
    assert record.exists()
    cli.record_serving(Settings(data_dir=served), "http://127.0.0.1:8000")
    cli.forget_serving()
    assert not record.exists()


def test_worker_processes_know_how_many_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """``relief api --workers 3`` tells its worker processes (which read their settings from
    the environment) that they are three: they then share the answers they compute."""
    monkeypatch.delenv("RELIEF_WORKERS", raising=False)
    monkeypatch.setenv("RELIEF_DATABASE_URL", "postgresql://unused")
    config = cli._worker_config("postgresql://db/relief", "127.0.0.1", 8000, 3)
    assert config.workers == 3
    assert os.environ["RELIEF_WORKERS"] == "3"
    assert os.environ["RELIEF_DATABASE_URL"] == "postgresql://db/relief"
