"""Read the environment once into a frozen Settings; each setting is declared once, below.

A field's declaration (variable, kind with its bounds, default, help) gives the parsing, the
README table (`python -m zenoti_ingest.settings --markdown`) and the way back (`to_env`).
Our own small table, not pydantic-settings or environs: importing them costs the ingress and
every CLI call about 150 ms and 70 ms at start; this module (import and parse) about 4 ms.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zenoti_ingest import errors, sentinel_url

PREFIX = "ZENOTI_INGEST_"
SIGNATURE_SCHEMES = ("zenoti-hmac", "standard-webhooks")
REDIS_SCHEMES = ("redis", "rediss", "unix", sentinel_url.SCHEME)
DATABASE_SCHEMES = ("postgresql", "postgres")
_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
# libpq's keyword=value form: `host=/tmp dbname=x password='a b'`
_CONNINFO = re.compile(r"(?:\s*[A-Za-z_]+\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s'=]+))+\s*")


def _shown(text: str) -> str:
    return f"`{text}`" if text else "none"


def _either(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


class Kind:
    """How one variable's text becomes a value, and back; unset or blank means the default."""

    accepts = "text"  # the README's "accepted" column

    def read(self, env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        return default if raw == "" else self.parse(name, raw)

    def parse(self, name: str, raw: str) -> Any:
        return raw

    def format(self, value: Any) -> str:
        return str(value)

    def to_env(self, name: str, value: Any) -> dict[str, str]:
        return {name: self.format(value)}

    def rows(self, name: str, default: Any, help: str) -> list[tuple[str, ...]]:
        return [(name, _shown(self.format(default)), self.accepts, help)]


class Text(Kind):
    def __init__(self, lower: bool = False) -> None:
        self.lower = lower  # header and algorithm names compare lowercased

    def parse(self, name: str, raw: str) -> str:
        return raw.lower() if self.lower else raw


class DataPath(Kind):
    accepts = "a directory"

    def parse(self, name: str, raw: str) -> Path:
        return Path(raw)


class Int(Kind):
    def __init__(self, minimum: int, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.accepts = (
            f"a whole number, at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
        )

    def parse(self, name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise errors.ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value < self.minimum:
            raise errors.ConfigError(f"{name} must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise errors.ConfigError(f"{name} must be at most {self.maximum}, got {value}")
        return value


class Seconds(Kind):
    def __init__(self, zero: bool) -> None:
        # whether 0 makes sense (retry at once) or not (a drain round of no time)
        self.zero = zero
        self.accepts = "seconds, at least 0" if zero else "seconds, more than 0"

    def parse(self, name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise errors.ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise errors.ConfigError(f"{name} must be a finite number, got {raw!r}")
        if value < 0 or (value == 0 and not self.zero):
            bound = "at least 0" if self.zero else "greater than 0"
            raise errors.ConfigError(f"{name} must be {bound}, got {value:g}")
        return value

    def format(self, value: float) -> str:
        return str(int(value)) if float(value).is_integer() else repr(float(value))


class Flag(Kind):
    accepts = "`1` or `0`"

    def parse(self, name: str, raw: str) -> bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise errors.ConfigError(f"{name} must be 1 or 0 (true or false), got {raw!r}")

    def format(self, value: bool) -> str:
        return "1" if value else "0"


class Choice(Kind):
    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.accepts = ", ".join(f"`{choice}`" for choice in choices)

    def parse(self, name: str, raw: str) -> str:
        value = raw.upper() if self.choices[0].isupper() else raw.lower()
        if value not in self.choices:
            raise errors.ConfigError(f"{name} must be {_either(self.choices)}, got {raw!r}")
        return value


class Url(Kind):
    """A URL that may hold a password: a bad one is described by its scheme, never quoted."""

    def __init__(self, *schemes: str, conninfo: bool = False) -> None:
        self.schemes = schemes
        self.conninfo = conninfo  # libpq's keyword=value form is accepted too
        self.wanted = _either([f"{scheme}://" for scheme in schemes]) + " URL"
        if conninfo:
            self.wanted += " or libpq key=value pairs"
        self.accepts = f"a {self.wanted}"

    def parse(self, name: str, raw: str) -> str:
        scheme, separator, _ = raw.partition("://")
        if separator and scheme.lower() in self.schemes:
            return raw
        if not separator and self.conninfo and _CONNINFO.fullmatch(raw):
            return raw
        got = f"a {scheme.lower()}:// URL" if separator else "no URL scheme"
        raise errors.ConfigError(f"{name} must be a {self.wanted}, got {got}")


class RedisUrl(Url):
    """A Redis URL; the Sentinel form (zenoti_ingest/sentinel_url.py) is read in full at start,
    so that a malformed one stops the process here rather than at its first connection."""

    def parse(self, name: str, raw: str) -> str:
        url = super().parse(name, raw)
        if sentinel_url.is_sentinel(url):
            sentinel_url.parse(url, name)
        return url


class SourceSecrets(Kind):
    """The default source's secrets in ZENOTI_INGEST_WEBHOOK_SECRETS; named sources listed in
    ZENOTI_INGEST_SOURCES, each with ZENOTI_INGEST_SOURCE_<NAME>_WEBHOOK_SECRETS."""

    def read(self, env: Mapping[str, str], name: str, default: Any) -> dict:
        secrets = {"": _list(env.get(name, ""))}
        for source in _list(env.get(PREFIX + "SOURCES", "")):
            if not _SOURCE_NAME.fullmatch(source):
                raise errors.ConfigError(
                    f"{PREFIX}SOURCES: {source!r} is not a source name (lowercase letters,"
                    " digits, - and _; at most 40)"
                )
            secrets[source] = _list(env.get(source_secrets_variable(source), ""))
        return secrets

    def to_env(self, name: str, value: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
        named = [source for source in value if source]
        env = {name: ",".join(value.get("", ())), PREFIX + "SOURCES": ",".join(named)}
        env.update({source_secrets_variable(s): ",".join(value[s]) for s in named})
        return env

    def rows(self, name: str, default: Any, help: str) -> list[tuple[str, ...]]:
        each = f"`{source_secrets_variable('<name>')}`"
        return [
            (name, "none", "comma-separated secrets", help),
            (
                PREFIX + "SOURCES",
                "none",
                "comma-separated names",
                f"named sources; each has {each}",
            ),
        ]


def _source_variable(source: str, suffix: str) -> str:
    """A named source's variable: ZENOTI_INGEST_SOURCE_<NAME>_<suffix> (its - written _)."""
    return f"{PREFIX}SOURCE_{source.upper().replace('-', '_')}_{suffix}"


def source_secrets_variable(source: str) -> str:
    return _source_variable(source, "WEBHOOK_SECRETS")


class SourceApiKeys(Kind):
    """The Zenoti API key of the default source in ZENOTI_INGEST_API_KEY; a named source's
    (listed in ZENOTI_INGEST_SOURCES) in ZENOTI_INGEST_SOURCE_<NAME>_API_KEY. Only the keys
    that are set are kept: {source: key}."""

    accepts = "an API key (Zenoti: Admin > Setup > Apps)"

    def read(self, env: Mapping[str, str], name: str, default: Any) -> dict:
        sources = ["", *_list(env.get(PREFIX + "SOURCES", ""))]
        keys = {s: env.get(source_api_key_variable(s), "").strip() for s in sources}
        return {source: key for source, key in keys.items() if key}

    def to_env(self, name: str, value: Mapping[str, str]) -> dict[str, str]:
        return {
            name: value.get("", ""),
            **{source_api_key_variable(s): k for s, k in value.items()},
        }

    def rows(self, name: str, default: Any, help: str) -> list[tuple[str, ...]]:
        each = f"`{source_api_key_variable('<name>')}`"
        return [
            (name, "none", self.accepts, help),
            (each.strip("`"), "none", self.accepts, "a named source's API key, for `backfill`"),
        ]


def source_api_key_variable(source: str) -> str:
    """The variable holding a source's Zenoti API key ("" is the default source)."""
    return _source_variable(source, "API_KEY") if source else PREFIX + "API_KEY"


def setting(
    default: Any, kind: Kind, help: str, env: str = "", factory: Any = None, secret: bool = False
) -> Any:
    """A Settings field: its variable (ZENOTI_INGEST_<FIELD> unless `env`), kind and help.
    A `secret` one (or a URL that may hold a password) stays out of repr(settings)."""
    metadata = {"kind": kind, "help": help, "env": env}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata, repr=not secret)
    return field(default=default, metadata=metadata, repr=not secret)


@dataclass(frozen=True)
class Settings:
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0",
        RedisUrl(*REDIS_SCHEMES),
        "the stream, and Celery's broker; Sentinel: `redis+sentinel://[:password@]host1:26379,"
        "host2:26379/<master name>/<db>` (see Redis for production)",
        "REDIS_URL",
        secret=True,
    )
    database_url: str = setting(
        "postgresql://postgres@127.0.0.1:5432/zenoti_ingest",
        Url(*DATABASE_SCHEMES, conninfo=True),
        "created if missing",
        "DATABASE_URL",
        secret=True,
    )
    host: str = setting("0.0.0.0", Text(), "ingress bind address")
    port: int = setting(8000, Int(1, 65535), "ingress port", "PORT")
    max_body_bytes: int = setting(1_048_576, Int(1), "larger bodies get 413")
    # {source: secrets}; "" is the default source (/webhooks/zenoti/...), others are named
    # sources (/webhooks/zenoti/@<source>/...). No secret: deliveries are not authenticated.
    webhook_secrets: Mapping[str, tuple[str, ...]] = setting(
        None,
        SourceSecrets(),
        "secrets of the default source",
        factory=lambda: {"": ()},
        secret=True,
    )
    signature_scheme: str = setting(
        "zenoti-hmac", Choice(*SIGNATURE_SCHEMES), "how deliveries are signed"
    )
    signature_header: str = setting(
        "zenoti-webhook-signature", Text(lower=True), "the signature's header, for `zenoti-hmac`"
    )
    signature_algorithm: str = setting(
        "sha256", Text(lower=True), "the signature's hash, for `zenoti-hmac`"
    )
    require_signature: bool = setting(
        False, Flag(), "`1`: a source without a secret stops the start (production)"
    )
    # Several deployments (or test runs) can share one Redis database.
    redis_prefix: str = setting("zenoti_ingest", Text(), "prefix of every Redis key we use")
    # Zenoti waits 10 s in all.
    enqueue_timeout_seconds: float = setting(
        2.0, Seconds(zero=False), "Redis time limit at the ingress (then 503)"
    )
    wait_replicas: int = setting(
        0, Int(0), "Redis replicas that must have a delivery before its 202"
    )
    wait_timeout_ms: int = setting(500, Int(1), "how long the ingress waits for them (then 503)")
    ingress_workers: int = setting(2, Int(1), "ingress processes")
    worker_concurrency: int = setting(2, Int(1), "worker pool processes (= drain slots)")
    # %h is the host name.
    worker_name: str = setting(
        "zenoti-ingest@%h", Text(), "Celery node name; unique per worker (two on a host too)"
    )
    batch_size: int = setting(500, Int(1), "deliveries per stream read and transaction")
    read_block_ms: int = setting(200, Int(1), "how long an idle drain task waits on the stream")
    drain_round_seconds: float = setting(
        2.0, Seconds(zero=False), "how long a drain task drains before passing on"
    )
    # It bounds how late a delivery held by a SIGKILLed worker on another host comes back.
    claim_idle_seconds: float = setting(
        30.0, Seconds(zero=False), "when another worker may claim a silent worker's entries"
    )
    poison_after_deliveries: int = setting(3, Int(1), "from then on a delivery is processed alone")
    max_deliveries: int = setting(10, Int(1), "past this, a dead letter (`retries_exhausted`)")
    retry_base_seconds: float = setting(
        1.0, Seconds(zero=True), "first backoff of a failing drain task"
    )
    retry_max_seconds: float = setting(
        60.0, Seconds(zero=True), "longest backoff of a failing drain task"
    )
    # Transient errors: deadlocks, a Redis or Postgres error mid-write.
    retry_for_seconds: float = setting(
        3600.0,
        Seconds(zero=True),
        "how long a batch failing transiently is retried before dead-lettering",
    )
    db_pool_size: int = setting(2, Int(1), "Postgres connections per worker process")
    data_dir: Path = setting(  # noqa: RUF009 (a field, as for every setting; Path is immutable)
        Path(".zenoti-ingest"), DataPath(), "where embedded servers keep their files"
    )
    log_level: str = setting(
        "INFO", Choice("DEBUG", "INFO", "WARNING", "ERROR"), "how much is logged"
    )
    log_format: str = setting(
        "auto", Choice("auto", "json", "console"), "`auto`: console on a TTY, else JSON"
    )
    metrics: bool = setting(
        True, Flag(), "`0`: record no metrics (the processes then skip even the in-memory counts)"
    )
    metrics_port: int = setting(9808, Int(1, 65535), "`zenoti-ingest metrics` serves /metrics here")
    # Storage (README "Storage"): what expires when, and how often each worker checks.
    archive_days: int = setting(
        90,
        Int(1),
        "days `processed` and `duplicate` deliveries (bodies: what `reprocess` and `rebuild` "
        "read) are kept; a dead letter is kept while dead, then as long after replay or discard",
    )
    event_log_days: int = setting(
        0,
        Int(0),
        "days the event log (`events`: each event's data, for `find` and reports) is kept; `0`: "
        "forever",
    )
    dedup_days: int = setting(
        30,
        Int(1),
        "days a delivery id is remembered as seen (a redelivery is a duplicate), bodies pruned or "
        "not; never fewer than `ZENOTI_INGEST_ARCHIVE_DAYS`",
    )
    storage_check_seconds: float = setting(
        600.0,
        Seconds(zero=False),
        "how often each worker creates partitions ahead and expires old ones",
    )
    # Backfill from Zenoti's REST API ({source: key}; "" is the default source).
    api_keys: Mapping[str, str] = setting(
        None,
        SourceApiKeys(),
        "the Zenoti API key `backfill` uses for the default source",
        "ZENOTI_INGEST_API_KEY",
        factory=dict,
        secret=True,
    )
    api_url: str = setting("https://api.zenoti.com", Url("https", "http"), "Zenoti's REST API")
    # Zenoti's bucket is 60 calls a minute for the whole organization, shared with its other
    # integrations: stay below it.
    api_calls_per_minute: int = setting(
        40, Int(1), "`backfill`'s pace: calls per rate window, shared by all its processes"
    )
    api_rate_window_seconds: float = setting(
        60.0, Seconds(zero=False), "the rate window (and scale of API waits); 60 but in tests"
    )
    api_timeout_seconds: float = setting(
        30.0, Seconds(zero=False), "how long one API call may take before it is tried again"
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Build Settings from the environment; a bad value raises ConfigError naming it."""
        return cls(**{s.attribute: s.kind.read(env, s.env, s.default()) for s in declared()})

    def to_env(self) -> dict[str, str]:
        """The environment variables that make another process read these same settings."""
        env: dict[str, str] = {}
        for s in declared():
            env.update(s.kind.to_env(s.env, getattr(self, s.attribute)))
        return env

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


class Declared:
    """One setting: its Settings attribute, variable, kind, help and default."""

    def __init__(self, f: dataclasses.Field) -> None:
        self.attribute, self.kind, self.help = f.name, f.metadata["kind"], f.metadata["help"]
        self.env = f.metadata["env"] or PREFIX + f.name.upper()
        self._field = f

    def default(self) -> Any:
        f = self._field
        return f.default_factory() if f.default is dataclasses.MISSING else f.default


@functools.cache
def declared() -> tuple[Declared, ...]:
    """Every setting, in the order of its declaration."""
    return tuple(Declared(f) for f in dataclasses.fields(Settings))


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()


def markdown_table() -> str:
    """The README's table of variables."""
    lines = ["| variable | default | accepted | meaning |", "|---|---|---|---|"]
    for s in declared():
        for name, default, accepts, help in s.kind.rows(s.env, s.default(), s.help):
            lines.append(f"| `{name}` | {default} | {accepts} | {help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m zenoti_ingest.settings --markdown  (prints the README table)")
    sys.stdout.write(markdown_table())
