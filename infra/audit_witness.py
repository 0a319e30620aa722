"""An auditor's witness: copies of the signed checkpoints kept outside the database.

Each run fetches the checkpoints the ledger publishes (over HTTP, or from the Kafka topic
``<topic>.checkpoints``), checks that they extend what the witness kept — the newest kept
checkpoint is still there, unchanged, and every new one is signed by the trusted key and names
its predecessor's digest — and only then appends the new ones to its directory. A ledger whose
newest checkpoints were deleted, or whose history was re-signed (even by the live signer), no
longer extends the witness copy: the run fails and keeps nothing new.

The directory holds ``public-key`` (hex, given once, checked every run) and
``checkpoints.jsonl`` (one checkpoint per line, append-only); ``relief audit verify
--checkpoints DIR`` checks the database against it.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.checkpoints import Checkpoint, follows, from_cloudevent, strict_hex

KEPT = "checkpoints.jsonl"
KEY = "public-key"
PAGE = 10_000


class WitnessError(Exception):
    pass


@dataclass
class WitnessReport:
    kept: int  # checkpoints held before this run
    new: list[Checkpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class WitnessDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def kept(self) -> list[Checkpoint]:
        file = self.path / KEPT
        if not file.exists():
            return []
        return [
            Checkpoint.from_dict(json.loads(line))
            for line in file.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]

    def trusted_key(self, given: bytes | None) -> bytes:
        """The key recorded on the first run; a different one given later is refused."""
        file = self.path / KEY
        if file.exists():
            recorded = strict_hex(file.read_text().strip(), 32)
            if given is not None and given != recorded:
                raise WitnessError(
                    f"{file} trusts {recorded.hex()}, not the key given: the witness copy "
                    "belongs to another signer"
                )
            return recorded
        if given is None:
            raise WitnessError("first run: give --public-key (obtained from the ledger's owner)")
        self.path.mkdir(parents=True, exist_ok=True)
        file.write_text(given.hex() + "\n")
        return given

    def append(self, new: Sequence[Checkpoint]) -> None:
        if not new:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / KEPT).open("a", encoding="utf-8") as out:
            for checkpoint in new:
                out.write(json.dumps(checkpoint.as_dict(), sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())


def check_extension(
    kept: Sequence[Checkpoint], fetched: Sequence[Checkpoint], trusted_key: bytes
) -> WitnessReport:
    """Do the fetched checkpoints extend the kept ones? The new ones, or what is wrong."""
    report = WitnessReport(kept=len(kept))
    by_sequence: dict[int, Checkpoint] = {}
    for checkpoint in fetched:
        seen = by_sequence.setdefault(checkpoint.sequence, checkpoint)
        if seen != checkpoint:
            report.problems.append(
                f"the source holds two different checkpoints #{checkpoint.sequence}"
            )
    kept_by_sequence = {c.sequence: c for c in kept}
    for sequence, checkpoint in by_sequence.items():
        held = kept_by_sequence.get(sequence)
        if held is not None and held != checkpoint:
            report.problems.append(
                f"checkpoint #{sequence} (position {held.position}) is not the one kept: "
                "the history it signed was replaced"
            )
    newest = kept[-1] if kept else None
    if newest is not None and newest.sequence not in by_sequence:
        latest = max(by_sequence, default=0)
        report.problems.append(
            f"the source no longer holds checkpoint #{newest.sequence} (position "
            f"{newest.position}) kept here; its newest is #{latest}: checkpoints were deleted"
            if latest < newest.sequence
            else f"the source did not send checkpoint #{newest.sequence} kept here"
        )
    previous = newest
    for sequence in sorted(s for s in by_sequence if newest is None or s > newest.sequence):
        checkpoint = by_sequence[sequence]
        problem = follows(checkpoint, previous, trusted_key)
        if problem is not None:
            report.problems.append(problem.detail)
            break
        report.new.append(checkpoint)
        previous = checkpoint
    if report.problems:
        report.new = []
    return report


def fetch_http(
    base_url: str, token: str | None, after: int, *, timeout: float = 30
) -> list[Checkpoint]:
    """``GET /audit/checkpoints`` from sequence ``after`` + 1, page by page."""
    found: list[Checkpoint] = []
    while True:
        query = urllib.parse.urlencode({"after": after, "limit": PAGE})
        request = urllib.request.Request(f"{base_url.rstrip('/')}/audit/checkpoints?{query}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            items = json.loads(response.read())["items"]
        page = [Checkpoint.from_dict(item) for item in items]
        found += page
        if len(page) < PAGE:
            return found
        after = page[-1].sequence


def fetch_kafka(bootstrap: str, topic: str, *, timeout: float = 60) -> list[Checkpoint]:
    """Every checkpoint record of the topic, from its first offset to its end."""
    from kafka import TopicPartition

    from infra import kafka_io

    consumer = kafka_io.consumer(bootstrap, group_id=None)
    try:
        if topic not in consumer.topics():
            raise WitnessError(f"no topic {topic} on {bootstrap}")
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        found: list[Checkpoint] = []
        deadline = time.monotonic() + timeout
        while consumer.position(partition) < end:
            if time.monotonic() > deadline:
                raise WitnessError(f"{topic} was not read to its end in {timeout:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        found.append(from_cloudevent(record.value))
                    except (ValueError, KeyError, TypeError) as error:
                        raise WitnessError(
                            f"record {record.offset} of {topic} is not a checkpoint: {error}"
                        ) from error
        return found
    finally:
        consumer.close()


def load_held(path: Path) -> list[Checkpoint]:
    """Checkpoints an auditor kept: a witness directory, or a JSON file as served by
    ``GET /audit/checkpoints`` (``{"items": [...]}``) or a list of them."""
    if path.is_dir():
        return WitnessDir(path).kept()
    document = json.loads(path.read_text(encoding="utf-8"))
    items = document.get("items", []) if isinstance(document, dict) else document
    return [Checkpoint.from_dict(item) for item in items]
