"""Authenticating deliveries at the door, against real Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
import standardwebhooks
from structlog import testing

from ingress import app as ingress_app
from tests.fixtures import samples, wsgi
from tests.fixtures.processes import wait_for
from zenoti_ingest import contract, errors, metrics, stream
from zenoti_ingest.settings import Settings

BODY = samples.repaired_body("appointment-started")
PATH = "/webhooks/zenoti/Appointment.Started"


def dotnet_hex(digest: bytes) -> str:
    """How .NET's BitConverter.ToString prints bytes: 18-2E-10-EB-..."""
    return "-".join(f"{b:02X}" for b in digest)


def signature(secret: str, body: bytes = BODY) -> bytes:
    return hmac.digest(secret.encode(), body, hashlib.sha256)


def make_app(redis_url: str, **env: str):
    """An app of its own: a key prefix no earlier test's app (or its metrics thread) uses."""
    prefix = f"zi_auth_{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {"REDIS_URL": redis_url, "ZENOTI_INGEST_REDIS_PREFIX": prefix, **env}
    )
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


def counted(redis_url: str, settings) -> dict[tuple[str, ...], float]:
    """The requests counted in Redis, once the app's recorder has flushed (within a second)."""
    client = redis.Redis.from_url(redis_url)
    return wait_for(lambda: metrics.counts(client, settings.redis_prefix, metrics.REQUESTS), 5)


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
    assert counted(redis_url, settings) == {("", "unauthenticated"): 1}
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
    assert counted(redis_url, settings) == {("", "ping"): 1}


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


GOOD_WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()


@pytest.mark.parametrize(
    "malformed",
    ["whsec_not base64!", "whsec_", "whsec_clé-secrète", "not-base64"],
    ids=["not-base64", "empty", "not-ascii", "no-prefix-not-base64"],
)
@pytest.mark.parametrize(
    ("env", "variable", "position"),
    [
        ({"ZENOTI_INGEST_WEBHOOK_SECRETS": "{bad}"}, "ZENOTI_INGEST_WEBHOOK_SECRETS", "1 of 1"),
        (
            {
                "ZENOTI_INGEST_WEBHOOK_SECRETS": GOOD_WHSEC,
                "ZENOTI_INGEST_SOURCES": "east-1",
                "ZENOTI_INGEST_SOURCE_EAST_1_WEBHOOK_SECRETS": f"{GOOD_WHSEC},{{bad}}",
            },
            "ZENOTI_INGEST_SOURCE_EAST_1_WEBHOOK_SECRETS",
            "2 of 2",
        ),
    ],
    ids=["default-source", "named-source"],
)
def test_a_malformed_standard_webhooks_secret_stops_the_start(
    redis_url, malformed, env, variable, position
):
    """A secret the standardwebhooks library can't decode is a ConfigError when the app is
    built (not a 401 for every request), naming the variable and which secret, never the
    secret itself."""
    env = {name: value.replace("{bad}", malformed) for name, value in env.items()}
    with pytest.raises(errors.ConfigError) as raised:
        make_app(redis_url, ZENOTI_INGEST_SIGNATURE_SCHEME="standard-webhooks", **env)
    message = str(raised.value)
    assert message == (
        f"{variable}: secret {position} is not a Standard Webhooks secret (whsec_ followed by "
        "base64), as ZENOTI_INGEST_SIGNATURE_SCHEME=standard-webhooks needs"
    )
    secret_text = malformed.removeprefix("whsec_")  # "" for the empty secret
    assert not secret_text or secret_text not in message
    assert GOOD_WHSEC.removeprefix("whsec_") not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_serve_with_a_malformed_secret_exits_with_one_configuration_line(tmp_path):
    """`zenoti-ingest serve` checks the secrets before handing over to granian: exit 2 and one
    line naming the variable, without the secret, instead of a traceback per granian worker."""
    secret = "whsec_hunter22 xyzzy"  # 13 base64 characters: no byte string has that length
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENOTI_INGEST_")}
    env.update(
        ZENOTI_INGEST_SIGNATURE_SCHEME="standard-webhooks",
        ZENOTI_INGEST_WEBHOOK_SECRETS=secret,
        ZENOTI_INGEST_DATA_DIR=str(tmp_path),
        PORT=str(free_port),  # were the check missing, granian would start there
    )
    done = subprocess.run(
        [sys.executable, "-m", "cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr  # exits.CONFIG
    assert done.stderr.splitlines() == [
        "zenoti-ingest: configuration error: ZENOTI_INGEST_WEBHOOK_SECRETS: secret 1 of 1 is "
        "not a Standard Webhooks secret (whsec_ followed by base64), as "
        "ZENOTI_INGEST_SIGNATURE_SCHEME=standard-webhooks needs"
    ]
    assert "hunter22" not in done.stdout + done.stderr
    assert "xyzzy" not in done.stdout + done.stderr
