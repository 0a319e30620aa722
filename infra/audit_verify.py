"""Verification of the log: chain, seals and signed checkpoints, in one consistent snapshot.

What it checks, and how it reports (the README's "Audit" section says what that proves):

- the checkpoints: each signed by the trusted key, numbered 1..n without a gap, each naming
  the digest of the one before, ranges that follow each other, one legacy boundary for all and
  the same as the database's, and every checkpoint an auditor kept (``held_elsewhere``) still
  there unchanged;
- the events: walked between checkpoints (infra/audit_walk.py), in parallel processes when
  the log is large, each range from the link its opening checkpoint signed: every link
  recomputes, every checkpoint's link and Merkle root match, and, with the cipher key, each
  event's seal opens at its place (or, at or below the signed legacy boundary, in the format
  from before binding). Seals are opened where no chained checkpoint vouches for them (the
  checkpointer opened those before signing): the unsigned tail, ranges signed before
  binding, and any range whose checkpoint does not match (to name the event); or everywhere,
  with ``open_signed``;
- rows the walk's join cannot see, by anti-joins: events without a chain row, chain rows without
  an event; and pre-binding seals that occur twice (a copied old event).

The report says how far the log is signed and how much is not; ``Limits`` turn a stale newest
checkpoint or a long unsigned tail into a failure.
"""

from __future__ import annotations

import base64
import datetime as dt
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from infra.audit_chain import GENESIS
from infra.audit_walk import Finding, Span, Target, Walked, pin_session, walk
from infra.checkpoints import Checkpoint, all_checkpoints, follows
from infra.sealing import Seal, read_boundary
from infra.settings import Settings

#: Below this many events per worker process, starting processes costs more than it saves.
PARALLEL_FROM = 20_000
UNOPENED_LIMIT = 100


@dataclass(frozen=True)
class Limits:
    """When a log that verifies is still not good enough: its newest checkpoint is older than
    ``max_checkpoint_age`` seconds, or more than ``max_unsigned`` events are not signed."""

    max_checkpoint_age: float | None = None
    max_unsigned: int | None = None


@dataclass(frozen=True)
class Verification:
    seals_checked: bool  # False: no cipher key, seals not opened
    head: int = 0  # highest position stored
    checked: int = 0  # events walked
    seals_opened: int = 0  # events whose seal was opened here
    intact_up_to: int = 0  # last position before the first break (head when none)
    signed_up_to: int = 0  # last position a verified checkpoint vouches for (0: none)
    unsigned_events: int = 0  # events after signed_up_to
    checkpoints: int = 0
    newest_checkpoint: Checkpoint | None = None  # the newest of the verified checkpoints
    checkpoint_age_s: float | None = None  # its age (without one: the first event's)
    legacy_until: int = 0  # events up to here may carry pre-binding seals
    legacy_events: int = 0  # events that do
    first_break: Finding | None = None
    unopened: tuple[Finding, ...] = ()  # events whose seal does not open at their place
    over_limits: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        return self.first_break is None

    @property
    def ok(self) -> bool:
        return self.intact and not self.over_limits

    def as_dict(self) -> dict[str, Any]:
        newest = self.newest_checkpoint
        return {
            "ok": self.ok,
            "intact": self.intact,
            "first_break": self.first_break.as_dict() if self.first_break else None,
            "intact_up_to": self.intact_up_to,
            "head": self.head,
            "checked": self.checked,
            "signed_up_to": self.signed_up_to,
            "unsigned_events": self.unsigned_events,
            "checkpoints": self.checkpoints,
            "newest_checkpoint": (
                {
                    "sequence": newest.sequence,
                    "position": newest.position,
                    "signed_at": newest.signed_at.isoformat(),
                }
                if newest
                else None
            ),
            "checkpoint_age_s": (
                round(self.checkpoint_age_s, 3) if self.checkpoint_age_s is not None else None
            ),
            "seals_checked": self.seals_checked,
            "seals_opened": self.seals_opened,
            "legacy_until": self.legacy_until,
            "legacy_events": self.legacy_events,
            "unopened": [f.as_dict() for f in self.unopened],
            "over_limits": list(self.over_limits),
        }


def verify_log(
    database_url: str,
    *,
    cipher_key: bytes | None = None,
    trusted_key: bytes | None = None,
    held_elsewhere: Sequence[Checkpoint] = (),
    limits: Limits = Limits(),
    workers: int = 1,
    parallel_from: int = PARALLEL_FROM,
    open_signed: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Verify the whole log as of one snapshot (see the module's docstring).

    ``cipher_key``: the AES key of the seals (without it, seals are not opened: a copied or
    moved sealed state then goes unnoticed until the checkpointer refuses to sign it).
    ``trusted_key``: the checkpoints' public key (without it: the one key they all carry).
    ``open_signed``: open every seal, also those chained checkpoints vouch for.
    """
    with psycopg.connect(database_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            snapshot = _scalar(conn, "SELECT pg_export_snapshot()")
            pin_session(conn)
            substituted = substitutes(conn)
            if substituted is not None:
                return Verification(
                    cipher_key is not None, first_break=Finding(0, "substituted", substituted)
                )
            head = int(
                _scalar(conn, "SELECT coalesce(max(notification_id), 0) FROM public.relief_events")
            )
            held = all_checkpoints(conn)
            boundary_in_db = read_boundary(conn)
            trusted, findings = check_checkpoints(held, trusted_key, held_elsewhere, boundary_in_db)
            boundary = (
                trusted[-1].legacy_until if trusted and trusted[-1].chained else boundary_in_db
            )
            assert boundary is not None
            parallel = workers > 1 and head >= parallel_from * 2
            spans = plan_spans(trusted, head, workers * 4 if parallel else 1, open_signed)
            walks, unseen = _walk_all(
                conn,
                database_url,
                snapshot,
                spans,
                (cipher_key, boundary),
                workers if parallel else 1,
                progress,
            )
            findings += unseen
            findings += [w.chain_break for w in walks if w.chain_break is not None]
            unopened = sorted((f for w in walks for f in w.unopened), key=lambda f: f.position)
            findings += unopened[:1]
            first = min(findings, key=lambda f: f.position) if findings else None
            matched = {p for w in walks for p in w.matched}
            signed = [
                c
                for c in trusted
                if c.position in matched and (first is None or c.position < first.position)
            ]
            signed_up_to = signed[-1].position if signed else 0
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM public.relief_events WHERE notification_id > %s),"
                " (SELECT max(notification_id) FROM public.relief_events"
                "  WHERE notification_id < %s),"
                " (SELECT extract(epoch FROM now() - recorded_at) FROM audit.chain"
                "  ORDER BY position LIMIT 1)",
                (signed_up_to, first.position if first else head + 1),
            ).fetchone()
            assert counts is not None
    unsigned, intact_up_to = int(counts[0]), int(counts[1] or 0)
    newest = trusted[-1] if trusted else None
    age = (
        (dt.datetime.now(dt.UTC) - newest.signed_at).total_seconds()
        if newest is not None
        else (float(counts[2]) if counts[2] is not None else None)
    )
    return Verification(
        seals_checked=cipher_key is not None,
        head=head,
        checked=sum(w.checked for w in walks),
        seals_opened=sum(w.opened for w in walks),
        intact_up_to=intact_up_to,
        signed_up_to=signed_up_to,
        unsigned_events=unsigned,
        checkpoints=len(held),
        newest_checkpoint=newest,
        checkpoint_age_s=age,
        legacy_until=boundary,
        legacy_events=sum(w.legacy for w in walks),
        first_break=first,
        unopened=tuple(unopened[:UNOPENED_LIMIT]),
        over_limits=_over_limits(limits, age, unsigned, newest),
    )


def verify_as_configured(
    settings: Settings, database_url: str, *, trusted_key: bytes | None, **options: Any
) -> Verification:
    """``verify_log`` with this deployment's cipher key (if this machine holds it), limits
    and number of workers."""
    cipher = settings.existing_cipher_key()
    return verify_log(
        database_url,
        cipher_key=base64.b64decode(cipher) if cipher else None,
        trusted_key=trusted_key,
        limits=Limits(settings.audit_max_checkpoint_age, settings.audit_max_unsigned),
        workers=settings.audit_verify_workers or default_workers(),
        **options,
    )


#: What the verifier reads must be the tables themselves: a view or a row-security policy in
#: their place could show it other rows than the application gets.
AUDITED_TABLES = ("public.relief_events", "audit.chain", "audit.checkpoints", "audit.seal_boundary")


def substitutes(conn: psycopg.Connection[Any]) -> str | None:
    for name in AUDITED_TABLES:
        row = conn.execute(
            "SELECT relkind, relrowsecurity FROM pg_class WHERE oid = to_regclass(%s)", (name,)
        ).fetchone()
        if row is None:
            return f"{name} does not exist"
        if row[0] != "r" or row[1]:
            return f"{name} is not a plain table (kind {row[0]!r}, row security {row[1]})"
    return None


def check_checkpoints(
    held: Sequence[Checkpoint],
    trusted_key: bytes | None,
    held_elsewhere: Sequence[Checkpoint],
    boundary_in_db: int,
) -> tuple[list[Checkpoint], list[Finding]]:
    """The checkpoints that verify, in order, up to the first that does not; and findings."""
    findings: list[Finding] = []
    by_sequence = {c.sequence: c for c in held}
    unchained = {c.position: c for c in held if not c.chained}
    for outside in held_elsewhere:
        # Copies kept before checkpoints were numbered carry no sequence: found by position.
        inside = (
            by_sequence.get(outside.sequence)
            if outside.sequence
            else unchained.get(outside.position)
        )
        if inside != outside:
            findings.append(
                Finding(
                    outside.position,
                    "missing" if inside is None else "rewritten",
                    f"checkpoint #{outside.sequence} (position {outside.position}) held outside "
                    f"the database is {'gone from' if inside is None else 'different in'} it",
                )
            )
    keys = {c.public_key for c in held}
    if trusted_key is None and len(keys) > 1:
        findings.append(
            Finding(
                held[0].position,
                "forged-checkpoint",
                "checkpoints are signed by several keys; name the trusted one",
            )
        )
        return [], findings
    trusted: list[Checkpoint] = []
    previous: Checkpoint | None = None
    for checkpoint in held:
        problem = _checkpoint_problem(checkpoint, previous, trusted_key, boundary_in_db)
        if problem is not None:
            findings.append(problem)
            break
        trusted.append(checkpoint)
        previous = checkpoint
    return trusted, findings


def _checkpoint_problem(
    checkpoint: Checkpoint,
    previous: Checkpoint | None,
    trusted_key: bytes | None,
    boundary_in_db: int,
) -> Finding | None:
    problem = follows(checkpoint, previous, trusted_key)
    if problem is None and checkpoint.chained and checkpoint.legacy_until != boundary_in_db:
        assert checkpoint.legacy_until is not None
        return Finding(
            min(checkpoint.legacy_until, boundary_in_db) + 1,
            "boundary-moved",
            f"the legacy boundary in the database ({boundary_in_db}) is not the one "
            f"checkpoint #{checkpoint.sequence} signed ({checkpoint.legacy_until})",
        )
    return problem


def plan_spans(
    trusted: Sequence[Checkpoint], head: int, count: int, open_signed: bool = False
) -> list[Span]:
    """The log cut at checkpoints into about ``count`` spans of similar size, each opened by
    the link its first checkpoint signed; the unsigned tail is the last. A span is vouched for
    (its seals need not be opened) when chained checkpoints signed all of it."""
    closing = [c for c in trusted if not c.heartbeat]
    signed_end = closing[-1].position if closing else 0
    per_span = max(1, signed_end // max(1, count))
    spans: list[Span] = []
    after, link, inside, vouched = 0, GENESIS, [], not open_signed
    for checkpoint in closing:
        inside.append(
            Target(checkpoint.position, checkpoint.hash, checkpoint.merkle_root, checkpoint.chained)
        )
        vouched = vouched and checkpoint.chained
        if checkpoint.position - after >= per_span or checkpoint is closing[-1]:
            spans.append(Span(after, checkpoint.position, link, tuple(inside), vouched))
            after, link, inside, vouched = checkpoint.position, checkpoint.hash, [], not open_signed
    if head > after:
        spans.append(Span(after, head, link))
    return spans


def _walk_all(
    conn: psycopg.Connection[Any],
    database_url: str,
    snapshot: str,
    spans: list[Span],
    sealing: tuple[bytes | None, int],
    workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[list[Walked], list[Finding]]:
    """Walk every span: here, in this transaction, or in worker processes sharing its snapshot
    while this session runs the anti-joins. ``sealing``: (cipher key or None, legacy boundary)."""
    key, boundary = sealing
    if workers <= 1:
        unseen = anti_joins(conn, boundary)
        seal = Seal(key, boundary) if key is not None else None
        walks: list[Walked] = []
        for span in spans:
            tell = _offset(progress, sum(w.checked for w in walks))
            walks.append(walk_span(conn, span, seal, tell))
        return walks, unseen
    # Fork is cheap and safe while this is the only thread; otherwise a clean forkserver.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    with ProcessPoolExecutor(
        min(workers, len(spans)),
        mp_context=multiprocessing.get_context(method),
        initializer=_start_worker,
        initargs=(database_url, snapshot, key, boundary),
    ) as pool:
        futures = [pool.submit(_walk_in_worker, span) for span in spans]
        unseen = anti_joins(conn, boundary)
        walks = []
        for future in futures:
            walks.append(future.result())
            if progress is not None:
                progress(sum(w.checked for w in walks))
    return walks, unseen


def _offset(progress: Callable[[int], None] | None, done: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    report = progress
    return lambda n: report(done + n)


#: In a worker process: its session, in the verifier's snapshot for as long as it lives, and
#: the seal. Set by ``_start_worker``.
_worker: dict[str, Any] = {}


def _start_worker(database_url: str, snapshot: str, key: bytes | None, boundary: int) -> None:
    conn = psycopg.connect(database_url)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    transaction = conn.transaction()
    transaction.__enter__()  # held until the process ends: every span in the same snapshot
    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
    _worker.update(conn=conn, seal=Seal(key, boundary) if key else None)


def _walk_in_worker(span: Span) -> Walked:
    return walk_span(_worker["conn"], span, _worker["seal"])


def walk_span(
    conn: psycopg.Connection[Any],
    span: Span,
    seal: Seal | None,
    progress: Callable[[int], None] | None = None,
) -> Walked:
    """A vouched-for span is walked without opening seals, and again with them if it breaks
    (so the event that fails is named, not only the checkpoint)."""
    walked = walk(
        conn,
        span,
        None if span.vouched else seal,
        unopened_limit=UNOPENED_LIMIT,
        progress=progress,
    )
    if walked.chain_break is not None and span.vouched and seal is not None:
        walked = walk(conn, span, seal, unopened_limit=UNOPENED_LIMIT)
    return walked


def anti_joins(conn: psycopg.Connection[Any], legacy_until: int) -> list[Finding]:
    """Rows the walk's join cannot see, found without sorting (merge anti-joins of the two
    position indexes); and pre-binding seals that occur twice (a sealed state copied)."""
    pin_session(conn)
    conn.execute("SET LOCAL enable_nestloop = off")
    found: list[Finding] = []
    # Positions only, so both sides are index-only scans; the one found is described after.
    row = conn.execute(
        "SELECT e.notification_id FROM public.relief_events e WHERE NOT EXISTS"
        " (SELECT 1 FROM audit.chain c WHERE c.position = e.notification_id)"
        " ORDER BY e.notification_id LIMIT 1"
    ).fetchone()
    if row is not None:
        event = _event_at(conn, "public.relief_events", "notification_id", int(row[0]))
        found.append(
            Finding(
                int(row[0]),
                "inserted",
                f"position {row[0]} ({event}) was never chained: inserted outside the store",
            )
        )
    row = conn.execute(
        "SELECT c.position FROM audit.chain c WHERE NOT EXISTS"
        " (SELECT 1 FROM public.relief_events e WHERE e.notification_id = c.position)"
        " ORDER BY c.position LIMIT 1"
    ).fetchone()
    if row is not None:
        event = _event_at(conn, "audit.chain", "position", int(row[0]))
        found.append(
            Finding(
                int(row[0]),
                "missing",
                f"the event recorded at position {row[0]} ({event}) is gone",
            )
        )
    if legacy_until > 0:
        conn.execute("SET LOCAL work_mem = '256MB'")
        row = conn.execute(
            "SELECT max(notification_id), min(notification_id) FROM public.relief_events"
            " WHERE notification_id <= %s GROUP BY substring(state FROM 1 FOR 28)"
            " HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
            (legacy_until,),
        ).fetchone()
        if row is not None:
            found.append(
                Finding(
                    int(row[0]),
                    "duplicate",
                    f"position {row[0]} holds the same sealed state as position {row[1]}: "
                    "an event written before place binding, copied",
                )
            )
    return found


def _event_at(conn: psycopg.Connection[Any], table: str, column: str, position: int) -> str:
    """'aggregate vN' of the row at ``position`` of one of the audited tables."""
    row = conn.execute(
        sql.SQL("SELECT originator_id, originator_version FROM {} WHERE {} = %s").format(
            sql.Identifier(*table.split(".")), sql.Identifier(column)
        ),
        (position,),
    ).fetchone()
    assert row is not None
    return f"{row[0]} v{row[1]}"


def _over_limits(
    limits: Limits, age: float | None, unsigned: int, newest: Checkpoint | None
) -> tuple[str, ...]:
    over = []
    if (
        limits.max_checkpoint_age is not None
        and age is not None
        and age > limits.max_checkpoint_age
    ):
        what = f"checkpoint #{newest.sequence}" if newest else "no checkpoint: the first event"
        over.append(
            f"{what} is {age:,.0f} s old (limit {limits.max_checkpoint_age:,.0f} s): "
            "the signer is not keeping up, or the newest checkpoints are gone"
        )
    if limits.max_unsigned is not None and unsigned > limits.max_unsigned:
        over.append(f"{unsigned:,} events are not signed (limit {limits.max_unsigned:,})")
    return tuple(over)


def _scalar(conn: psycopg.Connection[Any], statement: str) -> Any:
    row = conn.execute(statement).fetchone()
    assert row is not None
    return row[0]


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))
