"""All configuration in one place: environment variables prefixed ``RELIEF_``.

| variable | default | meaning |
|---|---|---|
| RELIEF_DATABASE_URL | (unset: embedded PostgreSQL) | libpq URL of the PostgreSQL holding the log |
| RELIEF_DATA_DIR | ~/.local/share/relief-ledger | embedded PostgreSQL data and runtime files |
| RELIEF_KAFKA_BOOTSTRAP | (unset: embedded Tansu broker) | host:port[,host:port] of Kafka |
| RELIEF_KAFKA_TOPIC | relief.events | topic the relay publishes the log to |
| RELIEF_KAFKA_PARTITIONS | 6 | partitions of that topic when the relay creates it |
| RELIEF_HTTP_HOST / RELIEF_HTTP_PORT | 127.0.0.1 / 8000 | where the API listens |
| RELIEF_DB_POOL_SIZE | 8 | connections per pool |
| RELIEF_DB_TIMEOUT | 3 | seconds to reach the database (connect, pooled connection) |
| RELIEF_DB_STATEMENT_TIMEOUT | 60 | seconds an API statement may run (0: no limit) |
| RELIEF_PROJECTION_BATCH | 1000 | events per projection transaction |
| RELIEF_PROJECTION_CATCH_UP_BATCH | 5000 | events per transaction while a runner is behind |
| RELIEF_PROJECTION_LINGER_MS | 200 | a live projection woken by a commit waits this long for more |
| RELIEF_READY_MAX_LAG | 1000 | /readyz fails when a projection is further behind than this |
| RELIEF_SOURCE | urn:relief-ledger:events | CloudEvents ``source`` of relayed events |
| RELIEF_IDENTITY_KEY | (unset: data_dir/identity.key) | hex key of the ID-number blind index |
| RELIEF_AUDIT_KEY | data_dir/audit-ed25519.pem | Ed25519 key signing chain checkpoints |
| RELIEF_CHECKPOINT_EVENTS / _SECONDS | 1000 / 60 | sign a checkpoint this often |
| RELIEF_CHECKPOINT_HEARTBEAT | 3600 | with no new event, sign the same head again this often (s) |
| RELIEF_AUDIT_MAX_CHECKPOINT_AGE | 7200 | audit verify fails when the newest checkpoint is older |
| RELIEF_AUDIT_MAX_UNSIGNED | 10000 | audit verify fails when more events than this are unsigned |
| RELIEF_AUDIT_VERIFY_WORKERS | (unset: one per CPU) | processes verifying ranges of the log |
| RELIEF_CIPHER_KEY | (unset: data_dir/cipher.key) | base64 AES-256 key encrypting stored events |
| RELIEF_JWT_ISSUER | relief-ledger-dev | required ``iss`` of bearer tokens |
| RELIEF_JWT_AUDIENCE | relief-ledger | required ``aud`` of bearer tokens |
| RELIEF_JWT_JWKS_URL | (unset) | the identity provider's JWKS; tokens are checked against it |
| RELIEF_JWT_PUBLIC_KEY | (unset: the dev key in data_dir) | PEM public key checking tokens |
| RELIEF_OIDC_DISCOVERY_URL | (unset) | provider's OpenID configuration: console sign-in by OIDC |
| RELIEF_OIDC_CLIENT_ID / _SECRET | (unset) | the console's client at that provider |
| RELIEF_MAX_BODY_BYTES | 262144 | larger request bodies are refused (413) |
| RELIEF_AGGREGATE_CACHE | 2000 | aggregates kept in memory per process (0: none) |
| RELIEF_SNAPSHOT_INTERVAL | 50 | snapshot an aggregate every this many of its events (0: none) |
| RELIEF_WORKERS | 1 | API worker processes of ``relief api`` / ``relief run`` |
| RELIEF_GROUP_COMMIT | 0 | 1: commands arriving together in a process commit in one transaction |
| RELIEF_ANSWER_CACHE_MB | 64 | dashboard answers kept per API process under their ETag (0: none) |
| RELIEF_ANSWER_MAX_STALE_MS | 1000 | an answer sent this long after computed, while refreshed |
| RELIEF_DIVISIONS_FILE | (unset: the shipped Guangdong file) | division list of the first start |
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from domain.contract import DEFAULT_LATE_ENTRY_DAYS

PREFIX = "RELIEF_"
DEFAULT_DATA_DIR = Path("~/.local/share/relief-ledger").expanduser()


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    kafka_bootstrap: str | None = None
    kafka_topic: str = "relief.events"
    kafka_partitions: int = 6
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    db_pool_size: int = 8
    db_timeout: int = 3
    db_statement_timeout: int = 60
    projection_batch: int = 1000
    projection_catch_up_batch: int = 5000
    projection_linger_ms: int = 200
    ready_max_lag: int = 1000
    source: str = "urn:relief-ledger:events"
    identity_key_hex: str | None = None
    audit_key_path: Path | None = None  # default: data_dir/audit-ed25519.pem
    checkpoint_events: int = 1000
    checkpoint_seconds: int = 60
    checkpoint_heartbeat: int = 3600
    audit_max_checkpoint_age: int = 7200
    audit_max_unsigned: int = 10_000
    audit_verify_workers: int | None = None  # default: one per CPU
    cipher_key_b64: str | None = None
    jwt_issuer: str = "relief-ledger-dev"
    jwt_audience: str = "relief-ledger"
    jwt_jwks_url: str | None = None
    jwt_public_key_path: Path | None = None
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    max_body_bytes: int = 262_144
    aggregate_cache: int = 2000
    #: Days after a contract's last day its staff may still record work done while it ran.
    late_entry_days: int = DEFAULT_LATE_ENTRY_DAYS
    snapshot_interval: int = 50
    workers: int = 1
    #: Commands arriving together in one process written by one transaction, a savepoint
    #: each (infra/group_commit.py).
    group_commit: bool = False
    #: Megabytes of dashboard answers each API process keeps under their ETags (api/etags.py).
    answer_cache_mb: int = 64
    #: Milliseconds a dashboard answer may be sent after it was computed while the current one
    #: is computed in the background (api/etags.py; 0: every answer computed when asked).
    answer_max_stale_ms: int = 1000
    #: the division list loaded when the log has no division yet (None: the shipped file)
    divisions_file: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else None

        def get_int(name: str, default: int, minimum: int = 1) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None
            if value < minimum and name != "HTTP_PORT":
                raise SettingsError(f"{PREFIX}{name} must be at least {minimum}, got {value}")
            return value

        defaults = cls()
        data_dir = get("DATA_DIR")
        return cls(
            database_url=get("DATABASE_URL"),
            data_dir=Path(data_dir).expanduser().resolve() if data_dir else defaults.data_dir,
            kafka_bootstrap=get("KAFKA_BOOTSTRAP"),
            kafka_topic=get("KAFKA_TOPIC") or defaults.kafka_topic,
            kafka_partitions=get_int("KAFKA_PARTITIONS", defaults.kafka_partitions),
            http_host=get("HTTP_HOST") or defaults.http_host,
            http_port=get_int("HTTP_PORT", defaults.http_port),
            db_pool_size=get_int("DB_POOL_SIZE", defaults.db_pool_size),
            db_timeout=get_int("DB_TIMEOUT", defaults.db_timeout),
            db_statement_timeout=get_int(
                "DB_STATEMENT_TIMEOUT", defaults.db_statement_timeout, minimum=0
            ),
            projection_batch=get_int("PROJECTION_BATCH", defaults.projection_batch),
            projection_catch_up_batch=get_int(
                "PROJECTION_CATCH_UP_BATCH", defaults.projection_catch_up_batch
            ),
            projection_linger_ms=get_int(
                "PROJECTION_LINGER_MS", defaults.projection_linger_ms, minimum=0
            ),
            late_entry_days=get_int("LATE_ENTRY_DAYS", defaults.late_entry_days, minimum=0),
            ready_max_lag=get_int("READY_MAX_LAG", defaults.ready_max_lag),
            source=get("SOURCE") or defaults.source,
            identity_key_hex=get("IDENTITY_KEY"),
            audit_key_path=Path(get("AUDIT_KEY") or "").expanduser() if get("AUDIT_KEY") else None,
            checkpoint_events=get_int("CHECKPOINT_EVENTS", defaults.checkpoint_events),
            checkpoint_seconds=get_int("CHECKPOINT_SECONDS", defaults.checkpoint_seconds),
            checkpoint_heartbeat=get_int("CHECKPOINT_HEARTBEAT", defaults.checkpoint_heartbeat),
            audit_max_checkpoint_age=get_int(
                "AUDIT_MAX_CHECKPOINT_AGE", defaults.audit_max_checkpoint_age
            ),
            audit_max_unsigned=get_int("AUDIT_MAX_UNSIGNED", defaults.audit_max_unsigned, 0),
            audit_verify_workers=(
                get_int("AUDIT_VERIFY_WORKERS", 1) if get("AUDIT_VERIFY_WORKERS") else None
            ),
            cipher_key_b64=get("CIPHER_KEY"),
            jwt_issuer=get("JWT_ISSUER") or defaults.jwt_issuer,
            jwt_audience=get("JWT_AUDIENCE") or defaults.jwt_audience,
            jwt_jwks_url=get("JWT_JWKS_URL"),
            jwt_public_key_path=(
                Path(get("JWT_PUBLIC_KEY") or "").expanduser() if get("JWT_PUBLIC_KEY") else None
            ),
            oidc_discovery_url=get("OIDC_DISCOVERY_URL"),
            oidc_client_id=get("OIDC_CLIENT_ID"),
            oidc_client_secret=get("OIDC_CLIENT_SECRET"),
            max_body_bytes=get_int("MAX_BODY_BYTES", defaults.max_body_bytes),
            aggregate_cache=get_int("AGGREGATE_CACHE", defaults.aggregate_cache, minimum=0),
            snapshot_interval=get_int("SNAPSHOT_INTERVAL", defaults.snapshot_interval, minimum=0),
            workers=get_int("WORKERS", defaults.workers, minimum=1),
            group_commit=bool(get_int("GROUP_COMMIT", int(defaults.group_commit), minimum=0)),
            answer_cache_mb=get_int("ANSWER_CACHE_MB", defaults.answer_cache_mb, minimum=0),
            answer_max_stale_ms=get_int(
                "ANSWER_MAX_STALE_MS", defaults.answer_max_stale_ms, minimum=0
            ),
            divisions_file=(
                Path(get("DIVISIONS_FILE") or "").expanduser() if get("DIVISIONS_FILE") else None
            ),
        )

    @property
    def audit_key_file(self) -> Path:
        """The Ed25519 key that signs checkpoints (made on first start when missing)."""
        return self.audit_key_path or self.data_dir / "audit-ed25519.pem"

    @property
    def jwt_dev_key_file(self) -> Path:
        """The development token-signing key (``relief auth token``), made on first use."""
        return self.data_dir / "jwt-ed25519.pem"

    def cipher_key(self) -> str:
        """The base64 AES-256 key of stored events: configured, or kept in data_dir (made once).

        Losing it makes the log unreadable: production configures it from a key vault.
        """
        existing = self.existing_cipher_key()
        if existing is not None:
            return existing
        return self._key_file(
            "cipher.key", lambda: base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        )

    def existing_cipher_key(self) -> str | None:
        """The cipher key if configured or already kept; never makes one (a verifier that
        made a key would find every seal "forged")."""
        if self.cipher_key_b64:
            import binascii

            try:
                raw = base64.b64decode(self.cipher_key_b64, validate=True)
            except (binascii.Error, ValueError):
                raise SettingsError(f"{PREFIX}CIPHER_KEY must be base64") from None
            if len(raw) not in (16, 24, 32):
                raise SettingsError(f"{PREFIX}CIPHER_KEY must be a 16, 24 or 32 byte AES key")
            return self.cipher_key_b64
        kept = self.data_dir / "cipher.key"
        return kept.read_text().strip() if kept.exists() else None

    def _key_file(self, name: str, make: Callable[[], str]) -> str:
        """A secret kept in ``data_dir/name``, written once with owner-only permissions."""
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                return path.read_text().strip()
            with os.fdopen(fd, "w") as file:
                file.write(make())
        return path.read_text().strip()

    def identity_key(self) -> bytes:
        """The blind-index key: configured, or kept in ``data_dir/identity.key`` (made once)."""
        if self.identity_key_hex:
            try:
                key = bytes.fromhex(self.identity_key_hex)
            except ValueError:
                raise SettingsError(f"{PREFIX}IDENTITY_KEY must be hex") from None
            if len(key) < 16:
                raise SettingsError(f"{PREFIX}IDENTITY_KEY must be at least 16 bytes")
            return key
        return bytes.fromhex(self._key_file("identity.key", lambda: secrets.token_hex(32)))

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
