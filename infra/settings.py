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
| RELIEF_PROJECTION_BATCH | 1000 | events per projection transaction during catch-up |
| RELIEF_READY_MAX_LAG | 1000 | /readyz fails when a projection is further behind than this |
| RELIEF_SOURCE | urn:relief-ledger:events | CloudEvents ``source`` of relayed events |
| RELIEF_IDENTITY_KEY | (unset: data_dir/identity.key) | hex key of the ID-number blind index |
| RELIEF_AUDIT_KEY | data_dir/audit-ed25519.pem | Ed25519 key signing chain checkpoints |
| RELIEF_CHECKPOINT_EVENTS / _SECONDS | 1000 / 60 | sign a checkpoint this often |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

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
    projection_batch: int = 1000
    ready_max_lag: int = 1000
    source: str = "urn:relief-ledger:events"
    identity_key_hex: str | None = None
    audit_key_path: Path | None = None  # default: data_dir/audit-ed25519.pem
    checkpoint_events: int = 1000
    checkpoint_seconds: int = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else None

        def get_int(name: str, default: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None
            if value <= 0 and name != "HTTP_PORT":
                raise SettingsError(f"{PREFIX}{name} must be positive, got {value}")
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
            projection_batch=get_int("PROJECTION_BATCH", defaults.projection_batch),
            ready_max_lag=get_int("READY_MAX_LAG", defaults.ready_max_lag),
            source=get("SOURCE") or defaults.source,
            identity_key_hex=get("IDENTITY_KEY"),
            audit_key_path=Path(get("AUDIT_KEY") or "").expanduser() if get("AUDIT_KEY") else None,
            checkpoint_events=get_int("CHECKPOINT_EVENTS", defaults.checkpoint_events),
            checkpoint_seconds=get_int("CHECKPOINT_SECONDS", defaults.checkpoint_seconds),
        )

    @property
    def audit_key_file(self) -> Path:
        """The Ed25519 key that signs checkpoints (made on first start when missing)."""
        return self.audit_key_path or self.data_dir / "audit-ed25519.pem"

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
        path = self.data_dir / "identity.key"
        if not path.exists():
            import os
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
        return bytes.fromhex(path.read_text().strip())

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
