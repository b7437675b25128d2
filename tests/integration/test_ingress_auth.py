"""Authenticating deliveries at the door, against real Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
import redis
import standardwebhooks
from structlog import testing

from ingress import app as ingress_app
from tests.fixtures import samples, wsgi
from zenoti_ingest import contract, errors, stream
from zenoti_ingest.settings import Settings

BODY = samples.repaired_body("appointment-started")
PATH = "/webhooks/zenoti/Appointment.Started"


def dotnet_hex(digest: bytes) -> str:
    """How .NET's BitConverter.ToString prints bytes: 18-2E-10-EB-..."""
    return "-".join(f"{b:02X}" for b in digest)


def signature(secret: str, body: bytes = BODY) -> bytes:
    return hmac.digest(secret.encode(), body, hashlib.sha256)


def make_app(redis_url: str, **env: str):
    settings = Settings.from_env({"REDIS_URL": redis_url, **env})
    return settings, ingress_app.create_app(settings)


def post(app, path: str = PATH, body: bytes = BODY, **headers: str) -> wsgi.Answer:
    return wsgi.call(
        app, "POST", path, body, headers={f"HTTP_{k.upper()}": v for k, v in headers.items()}
    )


def enqueued(settings: Settings) -> list[contract.Delivery]:
    client = redis.Redis.from_url(settings.redis_url)
    return [stream.decode(f) for _, f in client.xrange(stream.Keys.of(settings).deliveries)]


@pytest.mark.parametrize(
    "written",
    [
        lambda d: dotnet_hex(d),
        lambda d: "sha256=" + dotnet_hex(d),
        lambda d: "  sha256 = " + dotnet_hex(d) + "  ",
        lambda d: d.hex(),
        lambda d: d.hex().upper(),
        lambda d: base64.b64encode(d).decode(),
        lambda d: "sha256=" + base64.b64encode(d).decode(),
    ],
    ids=["dotnet", "prefixed", "spaced", "hex", "HEX", "base64", "prefixed-base64"],
)
def test_zenoti_signature_in_every_reported_spelling_is_accepted(redis_url, written):
    """HMAC-SHA256 of the raw body: dashed .NET hex (with or without a prefix), hex, base64."""
    settings, app = make_app(redis_url, ZENOTI_INGEST_WEBHOOK_SECRETS="s3cret")
    answer = post(app, zenoti_webhook_signature=written(signature("s3cret")))
    assert answer.status == 202
    assert [d.body for d in enqueued(settings)] == [BODY]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"zenoti_webhook_signature": ""},
        {"zenoti_webhook_signature": "not a signature"},
        {"zenoti_webhook_signature": dotnet_hex(signature("other"))},
        {"zenoti_webhook_signature": dotnet_hex(signature("s3cret", BODY + b" "))},
    ],
    ids=["missing", "empty", "garbage", "wrong-secret", "other-body"],
)
def test_bad_or_missing_signature_is_401_without_detail_and_counted(redis_url, headers):
    """401 says only "unauthenticated"; nothing is enqueued; the failure is counted and
    logged without the body."""
    settings, app = make_app(redis_url, ZENOTI_INGEST_WEBHOOK_SECRETS="s3cret")
    with testing.capture_logs() as logs:
        answer = post(app, **headers)
    assert (answer.status, answer.json()) == (401, {"error": "unauthenticated"})
    assert enqueued(settings) == []
    counters = redis.Redis.from_url(redis_url).hgetall(stream.Keys.of(settings).counters)
    assert counters[b"unauthenticated"] == b"1"
    assert [entry["event"] for entry in logs] == ["delivery_unauthenticated"]
    assert "RENU" not in repr(logs)


def test_several_secrets_let_a_secret_rotate(redis_url):
    """Either of two configured secrets is accepted."""
    _, app = make_app(redis_url, ZENOTI_INGEST_WEBHOOK_SECRETS="old, new")
    for secret in ("old", "new"):
        assert post(app, zenoti_webhook_signature=dotnet_hex(signature(secret))).status == 202


def test_header_and_algorithm_are_configuration(redis_url):
    """Zenoti never published the scheme: header name and algorithm can be changed."""
    _, app = make_app(
        redis_url,
        ZENOTI_INGEST_WEBHOOK_SECRETS="k",
        ZENOTI_INGEST_SIGNATURE_HEADER="X-Zenoti-Signature",
        ZENOTI_INGEST_SIGNATURE_ALGORITHM="sha512",
    )
    digest = hmac.digest(b"k", BODY, hashlib.sha512)
    assert post(app, x_zenoti_signature=digest.hex()).status == 202
    assert post(app, zenoti_webhook_signature=digest.hex()).status == 401


def test_standard_webhooks_scheme_with_timestamp_tolerance(redis_url):
    """webhook-id/-timestamp/-signature checked by the standardwebhooks library; a signature
    older than its tolerance is refused."""
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()
    _, app = make_app(
        redis_url,
        ZENOTI_INGEST_WEBHOOK_SECRETS=secret,
        ZENOTI_INGEST_SIGNATURE_SCHEME="standard-webhooks",
    )
    hook = standardwebhooks.Webhook(secret)

    def headers(when: datetime) -> dict[str, str]:
        return {
            "webhook_id": "msg_1",
            "webhook_timestamp": str(int(when.timestamp())),
            "webhook_signature": hook.sign("msg_1", when, BODY.decode()),
        }

    now = datetime.now(UTC)
    assert post(app, **headers(now)).status == 202
    assert post(app, **headers(now - timedelta(minutes=10))).status == 401
    assert post(app, body=b"\xff\xfe", **headers(now)).status == 401  # not UTF-8: no crash


def test_named_sources_have_their_own_secrets_and_are_stored(redis_url):
    """/webhooks/zenoti/@<source>/...: each source its own secrets; the source travels with
    the delivery; an unknown source is 404."""
    settings, app = make_app(
        redis_url,
        ZENOTI_INGEST_WEBHOOK_SECRETS="main",
        ZENOTI_INGEST_SOURCES="east",
        ZENOTI_INGEST_SOURCE_EAST_WEBHOOK_SECRETS="east-key",
    )
    east_path = "/webhooks/zenoti/@east/Appointment.Started"
    assert post(app, east_path, zenoti_webhook_signature=signature("east-key").hex()).status == 202
    assert post(app, east_path, zenoti_webhook_signature=signature("main").hex()).status == 401
    assert post(app, "/webhooks/zenoti/@west/Appointment.Started").status == 404
    [delivery] = enqueued(settings)
    assert (delivery.source, delivery.path_hint) == ("east", "Appointment.Started")


def test_empty_unsigned_post_is_a_ping_even_with_secrets(redis_url):
    """Zenoti's test button: an empty unsigned POST gets 200 and is counted, not enqueued."""
    settings, app = make_app(redis_url, ZENOTI_INGEST_WEBHOOK_SECRETS="s3cret")
    assert post(app, body=b"").status == 200
    assert enqueued(settings) == []
    counters = redis.Redis.from_url(redis_url).hgetall(stream.Keys.of(settings).counters)
    assert counters[b"pings"] == b"1"


def test_no_secret_runs_but_says_so_loudly(redis_url):
    """Without a secret the ingress runs (local use) and warns at start."""
    with testing.capture_logs() as logs:
        _, app = make_app(redis_url)
    assert [entry["event"] for entry in logs] == ["deliveries_not_authenticated"]
    assert post(app).status == 202


def test_require_signature_makes_a_missing_secret_fatal(redis_url):
    """ZENOTI_INGEST_REQUIRE_SIGNATURE=1 with a source lacking a secret stops the start."""
    with pytest.raises(errors.ConfigError, match="east"):
        make_app(
            redis_url,
            ZENOTI_INGEST_REQUIRE_SIGNATURE="1",
            ZENOTI_INGEST_WEBHOOK_SECRETS="main",
            ZENOTI_INGEST_SOURCES="east",
        )
