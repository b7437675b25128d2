"""Read the environment once into a frozen Settings."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from zenoti_ingest import errors

PREFIX = "ZENOTI_INGEST_"
SIGNATURE_SCHEMES = ("zenoti-hmac", "standard-webhooks")
_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/zenoti_ingest"
    host: str = "0.0.0.0"  # the ingress listens here
    port: int = 8000
    max_body_bytes: int = 1_048_576  # larger bodies get 413
    # {source: secrets}; "" is the default source (/webhooks/zenoti/...), others are named
    # sources (/webhooks/zenoti/@<source>/...). No secret: deliveries are not authenticated.
    webhook_secrets: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {"": ()})
    signature_scheme: str = "zenoti-hmac"
    signature_header: str = "zenoti-webhook-signature"
    signature_algorithm: str = "sha256"
    require_signature: bool = False  # production: a source without a secret is fatal
    # Every Redis key we own starts with this, so several deployments (or test runs) can share
    # one Redis database.
    redis_prefix: str = "zenoti_ingest"
    enqueue_timeout_seconds: float = 2.0  # the ingress answers 503 past this; Zenoti waits 10 s
    wait_replicas: int = 0  # >0: a 202 also means that many Redis replicas have the delivery
    wait_timeout_ms: int = 500
    ingress_workers: int = 2
    worker_concurrency: int = 2
    # Celery node name; %h is the host name. Two workers on one host need different names.
    worker_name: str = "zenoti-ingest@%h"
    batch_size: int = 500  # deliveries claimed per stream read, written in one transaction
    read_block_ms: int = 200  # how long an idle drainer waits on the stream per read
    drain_round_seconds: float = 2.0  # a drain task reads batches for this long, then hands off
    # An entry a consumer took and never acknowledged is claimed by another after this long.
    # It bounds how late a delivery held by a SIGKILLed worker on another host comes back.
    claim_idle_seconds: float = 30.0
    poison_after_deliveries: int = 3  # from this many deliveries on, an entry is processed alone
    max_deliveries: int = 10  # ... and past this many it becomes a dead letter
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    # A batch failing with transient errors (deadlocks, a Redis or Postgres error mid-write)
    # is retried this long; then its deliveries become dead letters (retries_exhausted).
    retry_for_seconds: float = 3600.0
    db_pool_size: int = 2
    data_dir: Path = Path(".zenoti-ingest")  # embedded servers keep their files here
    log_level: str = "INFO"
    log_format: str = "auto"  # json, console, or auto (console on a TTY)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Build Settings from the environment; a bad value raises ConfigError naming it."""
        return cls(
            redis_url=env.get("REDIS_URL", cls.redis_url),
            database_url=env.get("DATABASE_URL", cls.database_url),
            host=env.get(PREFIX + "HOST", cls.host),
            port=_int(env, "PORT", cls.port, minimum=1),
            max_body_bytes=_int(env, PREFIX + "MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            webhook_secrets=_webhook_secrets(env),
            signature_scheme=_choice(
                env, PREFIX + "SIGNATURE_SCHEME", cls.signature_scheme, SIGNATURE_SCHEMES
            ),
            signature_header=env.get(PREFIX + "SIGNATURE_HEADER", cls.signature_header).lower(),
            signature_algorithm=env.get(
                PREFIX + "SIGNATURE_ALGORITHM", cls.signature_algorithm
            ).lower(),
            require_signature=_bool(env, PREFIX + "REQUIRE_SIGNATURE", cls.require_signature),
            redis_prefix=env.get(PREFIX + "REDIS_PREFIX", cls.redis_prefix),
            enqueue_timeout_seconds=_float(
                env, PREFIX + "ENQUEUE_TIMEOUT_SECONDS", cls.enqueue_timeout_seconds
            ),
            wait_replicas=_int(env, PREFIX + "WAIT_REPLICAS", cls.wait_replicas),
            wait_timeout_ms=_int(env, PREFIX + "WAIT_TIMEOUT_MS", cls.wait_timeout_ms, minimum=1),
            ingress_workers=_int(env, PREFIX + "INGRESS_WORKERS", cls.ingress_workers, minimum=1),
            worker_concurrency=_int(
                env, PREFIX + "WORKER_CONCURRENCY", cls.worker_concurrency, minimum=1
            ),
            worker_name=env.get(PREFIX + "WORKER_NAME", cls.worker_name),
            batch_size=_int(env, PREFIX + "BATCH_SIZE", cls.batch_size, minimum=1),
            read_block_ms=_int(env, PREFIX + "READ_BLOCK_MS", cls.read_block_ms, minimum=1),
            drain_round_seconds=_float(
                env, PREFIX + "DRAIN_ROUND_SECONDS", cls.drain_round_seconds
            ),
            claim_idle_seconds=_float(env, PREFIX + "CLAIM_IDLE_SECONDS", cls.claim_idle_seconds),
            poison_after_deliveries=_int(
                env, PREFIX + "POISON_AFTER_DELIVERIES", cls.poison_after_deliveries, minimum=1
            ),
            max_deliveries=_int(env, PREFIX + "MAX_DELIVERIES", cls.max_deliveries, minimum=1),
            retry_base_seconds=_float(env, PREFIX + "RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_max_seconds=_float(env, PREFIX + "RETRY_MAX_SECONDS", cls.retry_max_seconds),
            retry_for_seconds=_float(env, PREFIX + "RETRY_FOR_SECONDS", cls.retry_for_seconds),
            db_pool_size=_int(env, PREFIX + "DB_POOL_SIZE", cls.db_pool_size, minimum=1),
            data_dir=Path(env.get(PREFIX + "DATA_DIR", str(cls.data_dir))),
            log_level=_choice(
                env, PREFIX + "LOG_LEVEL", cls.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            log_format=_choice(
                env, PREFIX + "LOG_FORMAT", cls.log_format, ("auto", "json", "console")
            ),
        )

    @property
    def stream_key(self) -> str:
        """The Redis stream the ingress appends deliveries to."""
        return f"{self.redis_prefix}:deliveries"

    @property
    def counters_key(self) -> str:
        """A Redis hash of counters the ingress keeps (pings, unauthenticated requests)."""
        return f"{self.redis_prefix}:counters"

    @property
    def consumer_group(self) -> str:
        return f"{self.redis_prefix}:workers"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()


def _webhook_secrets(env: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """The default source's secrets, and each named source's (ZENOTI_INGEST_SOURCES lists them;
    ZENOTI_INGEST_SOURCE_<NAME>_WEBHOOK_SECRETS holds each one's)."""
    secrets = {"": _list(env.get(PREFIX + "WEBHOOK_SECRETS", ""))}
    for source in _list(env.get(PREFIX + "SOURCES", "")):
        if not _SOURCE_NAME.fullmatch(source):
            raise errors.ConfigError(
                f"{PREFIX}SOURCES: {source!r} is not a source name (lowercase letters, digits,"
                " - and _; at most 40)"
            )
        name = f"{PREFIX}SOURCE_{source.upper().replace('-', '_')}_WEBHOOK_SECRETS"
        secrets[source] = _list(env.get(name, ""))
    return secrets


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise errors.ConfigError(f"{name} must be 1 or 0 (true or false), got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise errors.ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise errors.ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise errors.ConfigError(f"{name} must be greater than 0, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, default)
    value = raw.upper() if choices[0].isupper() else raw.lower()
    if value not in choices:
        raise errors.ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value
