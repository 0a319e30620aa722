"""An auditor's witness over real HTTP: it keeps the checkpoints and notices a re-signed tail."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn

from api.app import create_app
from api.cli import main
from infra.checkpoints import load_or_create_key, raw_public_key, sign_checkpoint
from infra.runtime import Runtime
from infra.sealing import seal_of
from tests.factories import token
from tests.scenario import write_history

pytestmark = pytest.mark.e2e


@pytest.fixture()
def served(runtime: Runtime) -> Iterator[str]:
    """The API on a real socket (the witness speaks plain HTTP to it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_witness_keeps_what_is_signed_and_refuses_a_re_signed_tail(
    runtime: Runtime,
    served: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = load_or_create_key(runtime.settings.audit_key_file)
    public = raw_public_key(key.public_key()).hex()

    def sign() -> int:
        checkpoint = sign_checkpoint(runtime.pool, key, seal_of(runtime.ledger)).checkpoint
        assert checkpoint is not None
        return checkpoint.position

    witness_dir = tmp_path / "witness"
    witness = ["audit", "witness", "--dir", str(witness_dir), "--url", served]
    monkeypatch.setenv("RELIEF_WITNESS_TOKEN", token("auditor", "44", "outside-auditor"))
    write_history(runtime, 3)
    first = sign()
    assert main(witness) == 1  # the first run must be told which key to trust
    assert "--public-key" in capsys.readouterr().err
    assert main([*witness, "--public-key", public]) == 0
    assert "1 new kept" in capsys.readouterr().out
    write_history(runtime, 3, seed=2)
    sign()
    assert main(witness) == 0
    assert "extends the 1 checkpoints kept; 1 new kept" in capsys.readouterr().out
    assert main(witness) == 0
    assert "0 new kept" in capsys.readouterr().out

    monkeypatch.setenv("RELIEF_DATABASE_URL", runtime.database_url)
    monkeypatch.setenv("RELIEF_DATA_DIR", str(runtime.settings.data_dir))
    verify = ["audit", "verify", "--checkpoints", str(witness_dir), "--public-key", public]
    assert main(verify) == 0
    capsys.readouterr()

    # The insider removes the tail and its checkpoint, writes another, and the live signer
    # signs it: the database alone now verifies, signed to its head.
    with psycopg.connect(runtime.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM relief_events WHERE notification_id > %s", (first,))
        conn.execute("DELETE FROM audit.chain WHERE position > %s", (first,))
        conn.execute("DELETE FROM audit.checkpoints WHERE sequence > 1")
    write_history(runtime, 2, seed=3)
    sign()
    assert main(["audit", "verify", "--public-key", public]) == 0
    capsys.readouterr()

    assert main(witness) == 1
    out = capsys.readouterr().out
    assert "NOT EXTENDED" in out and "checkpoint #2" in out
    assert main(verify) == 1
    assert "rewritten" in capsys.readouterr().out
    kept = (witness_dir / "checkpoints.jsonl").read_text().splitlines()
    assert len(kept) == 2  # nothing of the fork was kept
