"""Safe writes at the HTTP edge: bounded request bodies and Idempotency-Key on commands.

A client that retries a command (a timeout, a dropped connection) sends the same
``Idempotency-Key``; the first answer is kept, and every retry gets that answer back instead
of recording the events again. Keys belong to the caller's whole identity (issuer, subject,
organisation, scope and role: the same user name in another county is another caller), live
for a day, and may not be reused for a different request. The answer is kept before it is
sent, so a retry sent the moment the first answer arrives is answered from it. The kept answer
is sealed with the event key (responses can carry names), its associated data binding it to
its caller and key: sealed bytes copied to another key by SQL do not open there (the retry is
answered 409, "kept answer failed verification", never another caller's answer).

The database unreachable: the request is answered 503 with Retry-After, and a key it had taken
is given back (at the next chance, if the database is gone at that moment). A key whose
request died without answering (its process stopped) is free again after ``PENDING_LEASE``.

A command whose COMMIT was cut off by the outage may have been recorded or not
(``CommitInDoubt``, infra/database.py). Its key is then neither given back nor answered: at
the next chance, before any claim answers, the doubt is settled by looking for the command's
own sealed events. Not there: the key is given back and a retry runs the command. There: the
retry is answered 409 ``recorded-answer-lost`` naming the records written, never run again,
so a command is not recorded twice and a retry never reports a recorded command as failed.

Both are plain ASGI middleware: the body must be read (and counted) before any route sees it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from anyio import to_thread
from cryptography.exceptions import InvalidTag
from eventsourcing.persistence import StoredEvent
from psycopg_pool import ConnectionPool

from api.auth import TokenVerifier, Unauthenticated
from api.problems import DATABASE_UNAVAILABLE, RETRY_AFTER_S
from infra.database import commits_in_doubt, discard_broken
from infra.faults import is_transient
from infra.sealing import Seal

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{8,200}$")  # visible ASCII, e.g. a UUID
KEY_LIFETIME = "24 hours"
#: A key still without an answer after this long belongs to a request that died unanswered:
#: far longer than any command runs (its statements have timeouts), it frees the key at last.
PENDING_LEASE = "5 minutes"
COMMAND_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def problem_message(
    status: int,
    rule: str,
    title: str,
    detail: str,
    field: str | None,
    extensions: dict[str, Any] | None = None,
) -> bytes:
    """An RFC 9457 problem body; ``extensions`` are members of its own (RFC 9457 §3.2)."""
    body: dict[str, Any] = {"type": f"/problems/{rule}", "title": title, "status": status}
    body["detail"] = detail
    if field:
        body["field"] = field
    body.update(extensions or {})
    return json.dumps(body).encode()


async def send_problem(
    send: Send,
    status: int,
    rule: str,
    title: str,
    detail: str,
    field: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = problem_message(status, rule, title, detail, field)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


#: Whether exactly these stored events are in the log (``FailFastApplicationRecorder``).
WereRecorded = Callable[[Sequence[StoredEvent]], bool]


class IdempotencyStore:
    """The kept answers, in PostgreSQL (so every API process sees every key)."""

    def __init__(
        self, pool: ConnectionPool, cipher: Any, were_recorded: WereRecorded | None = None
    ) -> None:
        self.pool, self.cipher, self.were_recorded = pool, cipher, were_recorded
        self._unreleased: set[tuple[str, str]] = set()  # releases the database missed
        self._in_doubt: dict[tuple[str, str], list[StoredEvent]] = {}  # commits cut off
        self._lock = threading.Lock()

    def claim(self, caller: str, key: str, request_hash: bytes) -> tuple[str, Any]:
        """Take the key, or say what holds it: ``new``, ``done`` (with the kept answer),
        ``pending`` (another request holds it) or ``mismatch`` (it named another request)."""
        self._settle_doubts()
        self._release_missed()
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO relief.idempotency_keys AS k (caller, key, request_hash)"
                " VALUES (%s, %s, %s) ON CONFLICT (caller, key) DO UPDATE"
                " SET request_hash = excluded.request_hash, status = NULL, response = NULL,"
                " created_at = now(), completed_at = NULL"
                f" WHERE k.created_at < now() - interval '{KEY_LIFETIME}'"
                f" OR (k.status IS NULL AND k.created_at < now() - interval '{PENDING_LEASE}')"
                " RETURNING true",
                (caller, key, request_hash),
            ).fetchone()
            if row is not None:
                return "new", None
            held = conn.execute(
                "SELECT request_hash, status, response FROM relief.idempotency_keys"
                " WHERE caller = %s AND key = %s",
                (caller, key),
            ).fetchone()
        if held is None:  # expired and taken by a concurrent request in between
            return "pending", None
        if bytes(held[0]) != request_hash:
            return "mismatch", None
        if held[1] is None:
            return "pending", None
        try:
            kept = json.loads(self._open(caller, key, bytes(held[2])))
        except (InvalidTag, ValueError):
            return "unverified", None
        return "done", (int(held[1]), kept["headers"], kept["body"].encode("utf-8"))

    def _place(self, caller: str, key: str) -> bytes:
        return b"idempotency-key\x00" + caller.encode() + b"\x00" + key.encode()

    def _seal(self, caller: str, key: str, kept: bytes) -> bytes:
        if self.cipher is None:
            return kept
        seal: Seal = self.cipher.seal
        return seal.seal(kept, self._place(caller, key))

    def _open(self, caller: str, key: str, sealed: bytes) -> bytes:
        if self.cipher is None:
            return sealed
        seal: Seal = self.cipher.seal
        return seal.open_bound(sealed, self._place(caller, key))

    def complete(
        self, caller: str, key: str, status: int, headers: list[list[str]], body: bytes
    ) -> None:
        kept = json.dumps({"headers": headers, "body": body.decode("utf-8")}).encode()
        sealed = self._seal(caller, key, kept)
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE relief.idempotency_keys SET status = %s, response = %s,"
                " completed_at = now() WHERE caller = %s AND key = %s",
                (status, sealed, caller, key),
            )

    def release(self, caller: str, key: str) -> None:
        """Forget a key whose request failed on our side (5xx): the client may retry it.

        With the database away the release waits for the next claim of this process, which
        does not answer before it is done: a retry never finds its own key still taken."""
        with self._lock:
            self._unreleased.add((caller, key))
        try:
            self._release_missed()
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("Idempotency-Key released later (database unavailable): %s", error)

    def hold_in_doubt(self, caller: str, key: str, stored_events: list[StoredEvent]) -> None:
        """Keep the key of a command whose recording is in doubt until the doubt is settled."""
        with self._lock:
            self._in_doubt[(caller, key)] = stored_events
        try:
            self._settle_doubts()
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("Idempotency-Key in doubt, settled later (database unavailable)")

    def _settle_doubts(self) -> None:
        with self._lock:
            doubts = list(self._in_doubt.items())
        for (caller, key), stored_events in doubts:
            if self.were_recorded is not None and self.were_recorded(stored_events):
                records = sorted(
                    {(str(e.originator_id), e.originator_version) for e in stored_events}
                )
                problem = problem_message(
                    409,
                    "recorded-answer-lost",
                    "Command recorded; its answer was lost",
                    "the database went away while this command was being recorded; it was"
                    " recorded, and is not run again: read the records named here",
                    "Idempotency-Key",
                    {"records": [{"id": i, "version": v} for i, v in records]},
                )
                self.complete(
                    caller, key, 409, [["content-type", "application/problem+json"]], problem
                )
            else:
                with self._lock:
                    self._unreleased.add((caller, key))
            with self._lock:
                self._in_doubt.pop((caller, key), None)

    def _release_missed(self) -> None:
        with self._lock:
            pending = list(self._unreleased)
        if not pending:
            return
        with self.pool.connection() as conn:
            conn.execute(
                "DELETE FROM relief.idempotency_keys AS k USING unnest(%s::text[],"
                " %s::text[]) AS r(caller, key) WHERE k.caller = r.caller AND k.key = r.key"
                " AND k.status IS NULL",
                ([c for c, _ in pending], [k for _, k in pending]),
            )
        with self._lock:
            self._unreleased.difference_update(pending)

    def discard_broken(self) -> None:
        discard_broken([self.pool])


#: Response headers worth replaying (not dates, not lengths computed again).
KEPT_HEADERS = {"content-type", "location", "etag"}


class SafeWrites:
    """ASGI middleware: 413 above the size limit; Idempotency-Key replay for commands."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        verifier: TokenVerifier,
        store: IdempotencyStore,
    ) -> None:
        self.app, self.limit = app, max_body_bytes
        self.verifier, self.store = verifier, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in COMMAND_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        try:
            body = await read_body(receive, self.limit)
        except BodyTooLarge:
            await self._too_large(send)
            return
        key = headers.get("idempotency-key")
        caller = None
        if key is not None:
            # Off the event loop: with a JWKS provider the first check may fetch its keys.
            caller = await to_thread.run_sync(self._caller, headers.get("authorization"))
        if key is None or caller is None:  # no key, or no valid token: the route answers
            await self.app(scope, _replay(body), send)
            return
        if not KEY_PATTERN.match(key):
            await send_problem(
                send,
                422,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                "use 8 to 200 visible ASCII characters, e.g. a UUID",
                "Idempotency-Key",
            )
            return
        request_hash = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).digest()
        try:
            outcome, kept = await to_thread.run_sync(self.store.claim, caller, key, request_hash)
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("database unavailable for Idempotency-Key: %s", error)
            await to_thread.run_sync(self.store.discard_broken)
            await self._database_unavailable(send)
            return
        if outcome == "mismatch":
            await send_problem(
                send,
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this key was used for a different request; use a new key for a new command",
                "Idempotency-Key",
            )
            return
        if outcome == "unverified":
            await send_problem(
                send,
                409,
                "kept-answer-failed-verification",
                "Kept answer failed verification",
                "the answer kept for this key does not open at its key (changed outside the "
                "ledger); the command is not run again: use a new key after checking its effect",
                "Idempotency-Key",
            )
            return
        if outcome == "pending":
            await send_problem(
                send,
                409,
                "request-in-progress",
                "Request in progress",
                "a request with this key is still being processed; retry shortly",
                "Idempotency-Key",
                headers=[(b"retry-after", b"1")],
            )
            return
        if outcome == "done":
            status, kept_headers, kept_body = kept
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        *((k.encode(), v.encode()) for k, v in kept_headers),
                        (b"content-length", str(len(kept_body)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": kept_body})
            return
        await self._first_time(scope, body, send, caller, key)

    async def _first_time(
        self, scope: Scope, body: bytes, send: Send, caller: str, key: str
    ) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            # Held back until the answer is kept: a retry sent the moment the client has it
            # must find it kept, not a key still in progress.
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        doubts: list[StoredEvent] = []
        token = commits_in_doubt.set(doubts)
        try:
            await self.app(scope, _replay(body), capture)
        except BaseException:
            await to_thread.run_sync(self.store.release, caller, key)
            raise
        finally:
            commits_in_doubt.reset(token)
        answer = b"".join(chunks)
        status = int(start.get("status", 500))
        if status >= 500 and doubts:
            await to_thread.run_sync(self.store.hold_in_doubt, caller, key, doubts)
        elif status >= 500:
            await to_thread.run_sync(self.store.release, caller, key)
        else:
            kept = [
                [k.decode("latin-1"), v.decode("latin-1")]
                for k, v in start.get("headers", [])
                if k.decode("latin-1").lower() in KEPT_HEADERS
            ]
            try:
                await to_thread.run_sync(self.store.complete, caller, key, status, kept, answer)
            except Exception as error:
                if not is_transient(error):
                    raise
                # The command is recorded; the client must learn so. Its key stays taken
                # (a retry gets 409) until PENDING_LEASE ends.
                log.warning("answer to Idempotency-Key not kept (database unavailable): %s", error)
        await send(start)
        await send({"type": "http.response.body", "body": answer})

    def _caller(self, authorization: str | None) -> str | None:
        """Whose keys these are: a digest of the caller's whole identity (no name in clear)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        try:
            principal = self.verifier.verify(authorization[7:].strip())
        except Unauthenticated:
            return None
        return hashlib.sha256(json.dumps(principal.identity).encode()).hexdigest()

    async def _database_unavailable(self, send: Send) -> None:
        await send_problem(
            send,
            503,
            DATABASE_UNAVAILABLE["rule"],
            DATABASE_UNAVAILABLE["title"],
            DATABASE_UNAVAILABLE["detail"],
            None,
            headers=[(b"retry-after", str(RETRY_AFTER_S).encode())],
        )

    async def _too_large(self, send: Send) -> None:
        await send_problem(
            send,
            413,
            "body-too-large",
            "Request body too large",
            f"request bodies are limited to {self.limit} bytes",
            None,
        )
