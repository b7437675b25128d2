"""openapi.yaml against the ingress (in-process, real Redis): schemathesis and every answer.

Schemathesis generates requests for every documented operation (examples, coverage of edges
and negative values, fuzzing) and checks each answer: no 5xx, a documented status, the
documented content type, headers and body schema; and 405 with Allow for undocumented methods.
A second test makes the app give each status the document lists (400, 413 and 503 included,
which generated requests don't reach) and checks those answers the same way. A third checks
that the document's event type pattern is the one the ingress routes by.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from werkzeug.test import Client

from ingress import app as ingress_app
from tests.fixtures import ports
from zenoti_ingest import contract
from zenoti_ingest.settings import Settings

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(OPENAPI)
DOCUMENT = yaml.safe_load(OPENAPI.read_text())
SOURCE, SECRET = "east", "s3cret"  # the Source parameter's example: a signed source


@pytest.fixture
def app(redis_url):
    """The ingress with the default limits, an open default source and a signed named one."""
    return ingress_app.create_app(
        Settings(
            redis_url=redis_url,
            redis_prefix=f"zi_openapi_{uuid.uuid4().hex[:8]}",
            webhook_secrets={"": (), SOURCE: (SECRET,)},
        )
    )


def test_openapi_yaml_is_a_valid_openapi_3_1_document():
    """The document passes the OpenAPI 3.1 meta-schema, and names the ingress's routes."""
    assert DOCUMENT["openapi"].startswith("3.1")
    SCHEMA.validate()
    webhooks = ingress_app.WEBHOOK_PATH
    assert set(DOCUMENT["paths"]) == {
        webhooks,
        f"{webhooks}/{{event_type}}",
        f"{webhooks}/@{{source}}",
        f"{webhooks}/@{{source}}/{{event_type}}",
        "/healthz",
        "/readyz",
    }


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_app_conforms_to_openapi_yaml(case, app):
    """Every generated request: an answer the document describes, never a 5xx."""
    case.call_and_validate(app=app)


def documented(path: str, method: str) -> dict:
    return DOCUMENT["paths"][path][method.lower()]["responses"]


def deref(node: dict) -> dict:
    """A `#/components/...` reference followed."""
    while "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


# (template, method, request path, body, environ overrides, which app) → status expected.
ANSWERS = [
    ("/webhooks/zenoti", "POST", "/webhooks/zenoti", b"", {}, "up", 200),
    (
        "/webhooks/zenoti/{event_type}",
        "PUT",
        "/webhooks/zenoti/Appointment.Started",
        b"\xff{",
        {},
        "up",
        202,
    ),
    ("/webhooks/zenoti", "PATCH", "/webhooks/zenoti", b"{}", {"CONTENT_LENGTH": "two"}, "up", 400),
    (
        "/webhooks/zenoti/{event_type}",
        "POST",
        "/webhooks/zenoti/Guest.Created",
        b"{}",
        {"CONTENT_LENGTH": "-1"},
        "up",
        400,
    ),
    (
        "/webhooks/zenoti/@{source}/{event_type}",
        "POST",
        f"/webhooks/zenoti/@{SOURCE}/Appointment.Started",
        b"{}",
        {},
        "up",
        401,
    ),
    ("/webhooks/zenoti/@{source}", "POST", "/webhooks/zenoti/@nosuch", b"{}", {}, "up", 404),
    (
        "/webhooks/zenoti/{event_type}",
        "POST",
        "/webhooks/zenoti/not an event",
        b"{}",
        {},
        "up",
        404,
    ),
    (
        "/webhooks/zenoti",
        "POST",
        "/webhooks/zenoti",
        b"[" * (Settings.max_body_bytes + 1),
        {},
        "up",
        413,
    ),
    ("/webhooks/zenoti", "POST", "/webhooks/zenoti", b"{}", {}, "down", 503),
    ("/healthz", "GET", "/healthz", b"", {}, "down", 200),
    ("/readyz", "GET", "/readyz", b"", {}, "up", 200),
    ("/readyz", "HEAD", "/readyz", b"", {}, "down", 503),
]


def test_every_documented_answer_is_given_and_conforms(app):
    """Each status the document lists, made to happen: documented for its operation, with its
    required headers, and a body its schema accepts; 405 with Allow for other methods."""
    down = ingress_app.create_app(
        Settings(redis_url=f"redis://127.0.0.1:{ports.free_port()}/0", enqueue_timeout_seconds=0.5)
    )
    apps = {"up": Client(app), "down": Client(down)}
    seen = set()
    for template, method, path, body, environ, which, status in ANSWERS:
        response = apps[which].open(path, method=method, data=body, environ_overrides=environ)
        assert response.status_code == status, (method, path)
        spec = deref(documented(template, method)[str(status)])
        for header, header_spec in spec.get("headers", {}).items():
            assert not header_spec.get("required") or header in response.headers, header
        if method != "HEAD":
            SCHEMA[template][method].validate_response(response)
        seen.add((template, status))
    webhook_statuses = {int(s) for s in documented("/webhooks/zenoti", "POST")}
    assert webhook_statuses == {s for t, s in seen if t.startswith("/webhooks")}
    for path, allow in (
        ("/webhooks/zenoti/Appointment.Started", "POST, PUT, PATCH"),
        ("/healthz", "GET, HEAD"),
    ):
        response = apps["up"].open(path, method="DELETE")
        assert (response.status_code, response.headers["Allow"]) == (405, allow)
        spec = deref({"$ref": "#/components/responses/MethodNotAllowed"})
        body = response.get_json()
        assert set(body) == set(spec["content"]["application/json"]["schema"]["required"])
        assert body["allow"] == allow


WORD = "A" + "b" * 39  # 40 characters: the longest word contract.EVENT_TYPE allows
EVENT_TYPE_PROBES = [
    "Appointment.Started",
    "Class.Booking.NoShow",
    "A",
    "a_1",
    WORD,
    WORD + "c",
    ".".join([WORD] * 6),
    ".".join([WORD] * 5 + [WORD + "c"]),
    ".".join(["A"] * 7),
    "1A",
    "A.",
    ".A",
    "A..B",
    "A-B",
    "A" * 10_001,
]


def test_the_documented_event_type_pattern_is_the_one_the_ingress_routes_by():
    """Each probe name matches the document's EventType pattern exactly when the ingress
    takes it for an event type (and answers 202, not 404)."""
    documented_pattern = re.compile(
        DOCUMENT["components"]["parameters"]["EventType"]["schema"]["pattern"]
    )
    assert {p: bool(documented_pattern.search(p)) for p in EVENT_TYPE_PROBES} == {
        p: bool(contract.EVENT_TYPE.fullmatch(p)) for p in EVENT_TYPE_PROBES
    }
