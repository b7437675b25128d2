"""Signature schemes over the exact raw body, and the per-source table of verifiers.

Zenoti documents that a header carries a signature but names neither header nor algorithm;
the default scheme is the one reported from live traffic: `zenoti-webhook-signature`, an
HMAC-SHA256 of the raw body written as .NET prints bytes (uppercase hex pairs joined by dashes),
possibly after a `sha256=` prefix. Plain hex and base64 are accepted too. Every comparison is
constant-time, and every configured secret is tried, so a secret can be rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import standardwebhooks

from zenoti_ingest import errors
from zenoti_ingest import settings as settings_module
from zenoti_ingest.settings import Settings

_PREFIX = re.compile(r"^\s*[A-Za-z0-9-]+\s*=\s*")  # "sha256=", "v1 = ", ...
_HEX = re.compile(r"[0-9A-Fa-f]+")


class Verifier(Protocol):
    def verify(self, body: bytes, environ: Mapping[str, Any]) -> bool:
        """True when the request carries a valid signature over `body`."""


def environ_key(header: str) -> str:
    """How a WSGI server presents an HTTP header: zenoti-webhook-signature → HTTP_ZENOTI_..."""
    return "HTTP_" + header.upper().replace("-", "_")


def decode_signature(value: str) -> bytes | None:
    """The digest bytes of a signature written as dashed hex, plain hex or base64."""
    text = _PREFIX.sub("", value).strip()
    compact = text.replace("-", "").replace(" ", "").replace(":", "")
    try:
        if _HEX.fullmatch(compact) and len(compact) % 2 == 0:
            return bytes.fromhex(compact)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


@dataclass(frozen=True)
class HmacSignature:
    """HMAC of the raw body in one header (Zenoti's reported scheme, by default)."""

    secrets: tuple[bytes, ...]
    header: str = "zenoti-webhook-signature"
    algorithm: str = "sha256"

    def verify(self, body: bytes, environ: Mapping[str, Any]) -> bool:
        sent = decode_signature(environ.get(environ_key(self.header), ""))
        if sent is None:
            return False
        matches = [
            hmac.compare_digest(hmac.digest(secret, body, self.algorithm), sent)
            for secret in self.secrets  # every secret, so timing says nothing about which
        ]
        return any(matches)


@dataclass(frozen=True)
class StandardWebhooks:
    """The Standard Webhooks scheme (webhook-id, webhook-timestamp, webhook-signature), checked
    by the `standardwebhooks` library with its 5-minute timestamp tolerance."""

    hooks: tuple[standardwebhooks.Webhook, ...]

    @classmethod
    def from_secrets(cls, secrets: tuple[str, ...], variable: str) -> StandardWebhooks:
        """Each secret decoded now: a malformed one stops the start (ConfigError naming the
        variable and the secret's position, never its value) instead of failing every request."""
        hooks = []
        for position, secret in enumerate(secrets, 1):
            try:
                hooks.append(standardwebhooks.Webhook(secret))
            except Exception:  # not base64, not ASCII, empty: the library's message says which
                raise errors.ConfigError(
                    f"{variable}: secret {position} of {len(secrets)} is not a Standard Webhooks"
                    " secret (whsec_ followed by base64), as ZENOTI_INGEST_SIGNATURE_SCHEME="
                    "standard-webhooks needs"
                ) from None  # the library's error, kept out: it could quote the value one day
        return cls(tuple(hooks))

    def verify(self, body: bytes, environ: Mapping[str, Any]) -> bool:
        headers = {
            name: environ.get(environ_key(name), "")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        for hook in self.hooks:
            try:
                hook.verify(body, headers, json_parse=False)
                return True
            except Exception:  # malformed headers, bad UTF-8, a wrong signature: all mean "no"
                continue
        return False


def verifiers(settings: Settings) -> dict[str, Verifier | None]:
    """{source name: its verifier, or None when it has no secret}; "" is the default source."""
    table: dict[str, Verifier | None] = {}
    for source, secrets in settings.webhook_secrets.items():
        if not secrets:
            table[source] = None
        elif settings.signature_scheme == "standard-webhooks":
            table[source] = StandardWebhooks.from_secrets(tuple(secrets), _variable(source))
        else:
            if settings.signature_algorithm not in hashlib.algorithms_guaranteed:
                raise errors.ConfigError(
                    "ZENOTI_INGEST_SIGNATURE_ALGORITHM must be a hashlib algorithm such as "
                    f"sha256, got {settings.signature_algorithm!r}"
                )
            table[source] = HmacSignature(
                tuple(s.encode() for s in secrets),
                settings.signature_header,
                settings.signature_algorithm,
            )
    return table


def _variable(source: str) -> str:
    """The variable that holds a source's secrets ("" is the default source)."""
    if source:
        return settings_module.source_secrets_variable(source)
    return settings_module.PREFIX + "WEBHOOK_SECRETS"
