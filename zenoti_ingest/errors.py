"""Every exception the project raises on purpose, in two families that decide what happens."""

from __future__ import annotations

from typing import Any


class ZenotiIngestError(Exception):
    """Base of every error raised on purpose."""


class ConfigError(ZenotiIngestError):
    """A setting is missing or malformed; the message names the variable."""


class ServiceUnavailable(ZenotiIngestError):
    """A service could neither be reached nor started (Redis, Postgres)."""


class ServiceRefused(ServiceUnavailable):
    """A service answered and refused us (a role or password it does not accept)."""


class DatabaseMissing(ServiceUnavailable):
    """Postgres answered, but the configured database does not exist (not migrated yet)."""


class TransientError(ZenotiIngestError):
    """Worth retrying: a service unreachable, a deadlock, a serialization failure."""


class EnqueueFailed(TransientError):
    """The broker did not take the delivery; the ingress answers 503."""


class DeliveryRejected(ZenotiIngestError):
    """Can never succeed as it is: the delivery becomes a dead letter.

    ``failure_class`` is a short machine-readable family, ``reason`` a sentence a person can
    act on. Neither may contain personal data: name fields and types, never values.
    """

    failure_class = "rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotJson(DeliveryRejected):
    failure_class = "parse"


class SchemaMismatch(DeliveryRejected):
    failure_class = "schema"


class UnknownEventType(DeliveryRejected):
    failure_class = "unknown_event_type"


class DataRejected(DeliveryRejected):
    """Postgres refused the delivery's values (out of range, NUL in text, ...)."""

    failure_class = "database"


class Unexpected(DeliveryRejected):
    """Reading the delivery raised an exception nobody foresaw: a bug of ours."""

    failure_class = "unexpected"


class RetriesExhausted(DeliveryRejected):
    failure_class = "retries_exhausted"


class ApiKeyRefused(ConfigError):
    """Zenoti's API refused the key (missing, wrong, expired); the message names the variable."""


class ApiFailed(ZenotiIngestError):
    """A Zenoti API call kept failing (5xx, timeouts, an error inside a 200) past its retries,
    or was refused for good (4xx): that resource's backfill stops, resumable."""


class ApiShapeError(ApiFailed):
    """An API answer does not fit the expected shape; names the endpoint and field, never a
    value."""


class BackfillRunning(ZenotiIngestError):
    """Another backfill of the same source holds its lock."""


def json_type(value: Any) -> str:
    """The JSON type name of a value: what error messages say instead of the value (it may be
    a guest's name or phone)."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
    return type(value).__name__
