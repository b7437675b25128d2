"""Guest and staff names, phone numbers and emails never reach a log line or a stored reason.

The hostile corpus, every sample page as printed, and every sample with its personal data
replaced by unique canaries (clean, with a NUL next to each canary, with its GUIDs made objects)
go through the ingress and the worker twice: in-process with every structlog event and stdlib
record captured, and as real `serve` and `worker` processes logging JSON at DEBUG. Neither the
logs nor `webhook_events.error` may contain a canary, or a name, email or phone number printed
on the sample pages.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import urllib.parse
from dataclasses import replace

import pytest
from structlog.testing import capture_logs

from ingress import app as ingress_app
from tests import hostile
from tests.fixtures import database, draining, wsgi
from tests.fixtures.processes import wait_for

SECRET_SOURCE = "east"  # a named source with a secret: unsigned deliveries to it are 401


def corpus(canaries: hostile.Canaries) -> list[hostile.Case]:
    """Every case (the hostile corpus and the sample pages), the samples with canaries, and a
    few of those posted unsigned to a source with a secret."""
    cases = hostile.all_cases() + hostile.canary_cases(canaries)
    cases += [
        replace(c, name=f"{c.name}@{SECRET_SOURCE}", path=f"/@{SECRET_SOURCE}{c.path}", ingress=401)
        for c in hostile.canary_cases(canaries)[:6]
    ]
    return cases


def personal_patterns(canaries: hostile.Canaries) -> list[re.Pattern]:
    """Canaries anywhere; the pages' own values as whole words (`test` is a first name there),
    but for those that are also words of our field names (a last name `membership` is the
    field path `membership.id` in a reason): the canaries stand in for those."""
    printed = {v for v in hostile.personal_values_in_pages() if v not in hostile.VOCABULARY}
    return [re.compile(re.escape(v)) for v in sorted(canaries.values)] + [
        re.compile(r"(?<![\w@.])" + re.escape(v) + r"(?![\w@])") for v in sorted(printed)
    ]


def found(patterns: list[re.Pattern], text: str) -> list[str]:
    return sorted({p.pattern for p in patterns if p.search(text)})


def stored_errors(url: str) -> list[str]:
    return [
        e
        for (e,) in database.fetch(url, "SELECT error FROM webhook_events WHERE error IS NOT NULL")
    ]


def canaries_kept(url: str) -> int:
    """Processed events whose data holds a canary: the canaries went all the way through."""
    return database.fetch(url, "SELECT count(*) FROM events WHERE data::text ILIKE '%%canary%%'")[
        0
    ][0]


@pytest.fixture
def fast(settings):
    """Short drain rounds, and a named source with a secret."""
    return replace(
        settings,
        drain_round_seconds=0.05,
        read_block_ms=10,
        webhook_secrets={"": (), SECRET_SOURCE: ("s3cret",)},
    )


def test_in_process_logs_and_reasons_carry_no_personal_data(fast, pool, caplog):
    """Ingress and drain rounds in this process, every structlog event (all levels) and every
    stdlib record captured: no canary and no printed personal value in any of them, nor in
    any stored reason. The capture is checked to have seen the outcomes it should, the body
    nobody foresaw (delivery_unexpected_error) among them, and no drain round failing."""
    canaries = hostile.Canaries()
    cases = corpus(canaries)
    app = ingress_app.create_app(fast)
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        answers = [wsgi.call(app, "POST", case.url, case.body) for case in cases]
        assert draining.until_empty(fast, pool, max_rounds=3).errors == []
    assert [a.status for a in answers] == [c.ingress for c in cases]
    accepted = sum(1 for a in answers if a.status == 202)
    assert database.fetch(fast.database_url, "SELECT count(*) FROM webhook_events") == [(accepted,)]
    names = [e["event"] for e in events]
    dead = database.fetch(
        fast.database_url, "SELECT count(*) FROM webhook_events WHERE status = 'dead'"
    )[0][0]
    assert names.count("delivery_dead") == dead > 0 and names.count("delivery_enqueued") == (
        accepted
    )
    assert {
        "delivery_processed",
        "delivery_too_large",
        "delivery_unauthenticated",
        "delivery_unexpected_error",
    } <= set(names)
    assert "drain_failed" not in names
    assert canaries_kept(fast.database_url) > 10
    logged = "\n".join(
        [json.dumps(e, default=str, ensure_ascii=False) for e in events] + [caplog.text]
    )
    patterns = personal_patterns(canaries)
    assert found(patterns, logged) == []
    assert found(patterns, "\n".join(stored_errors(fast.database_url))) == []


def post(port: int, case: hostile.Case, limit: int) -> int:
    """POST the case; a body over the limit is not sent at all: the server answers from its
    Content-Length (and closes the connection) before reading it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", urllib.parse.quote(case.url, safe="/@"))
        connection.putheader("Content-Length", str(len(case.body)))
        connection.endheaders()
        if len(case.body) <= limit:
            connection.send(case.body)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_real_processes_log_no_personal_data(pipeline):
    """`zenoti-ingest serve` and `worker` logging JSON at DEBUG: every case posted over HTTP and
    settled, no drain round failing, then no canary and no printed personal value in either
    process's output, nor in any stored reason."""
    pipeline.settings = replace(
        pipeline.settings,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        drain_round_seconds=0.5,
        log_level="DEBUG",
        webhook_secrets={"": (), SECRET_SOURCE: ("s3cret",)},
    )
    pipeline.start("serve")
    pipeline.start("worker")
    canaries = hostile.Canaries()
    cases = corpus(canaries)
    url = pipeline.settings.database_url
    limit = pipeline.settings.max_body_bytes
    answers = [post(pipeline.settings.port, c, limit) for c in cases]
    assert answers == [c.ingress for c in cases]
    accepted = answers.count(202)
    wait_for(
        lambda: database.fetch(url, "SELECT count(*) FROM webhook_events")[0][0] == accepted,
        timeout=120,
        what=f"{accepted} settled deliveries",
    )
    logged = pipeline.logs()
    assert '"event": "delivery_dead"' in logged and '"delivery_unauthenticated"' in logged
    assert '"delivery_unexpected_error"' in logged and '"drain_failed"' not in logged
    assert canaries_kept(url) > 10
    patterns = personal_patterns(canaries)
    assert found(patterns, logged) == []
    assert found(patterns, "\n".join(stored_errors(url))) == []
