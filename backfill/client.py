"""One Zenoti API call at a time: the key, the pace, retries, errors inside 200s, shapes.

`Authorization: apikey <key>` (Zenoti's backend-app key). Every attempt first waits its turn
(rate.Limiter); a 429 holds every process of the source back for its Retry-After; 5xx answers,
timeouts, unreachable hosts and a 200 whose `error` / `Error` is not null are tried again with
capped exponential backoff; a refused key (HTTP 401/403, or 401/438 inside the body) stops the
run with an error naming the variable. Messages name the endpoint and the field, never a value
(an answer is full of guests' names and phones) and never the key.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from backfill import rate
from zenoti_ingest import backoff, errors, logs
from zenoti_ingest import settings as settings_module
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)
# httpx logs every request at INFO (its URL: ids and dates): our own lines say what matters.
logging.getLogger("httpx").setLevel(logging.WARNING)

MAX_ATTEMPTS = 6  # failures (5xx, timeouts, errors inside 200) of one call before it stops
MAX_THROTTLED = 20  # 429s of one call: each waits its Retry-After, the bucket is shared
# Backoff and waits without a Retry-After are given for a 60 s window and scale with it.
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 60.0
RETRY_AFTER_DEFAULT_SECONDS = 5.0
# A Date header further than this from our clock is not trusted as the snapshot's time.
MAX_SKEW_SECONDS = 300.0
_REFUSED_CODES = frozenset(
    {401, 438}
)  # inside the body: denied, "user does not have authorization"


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer: its exact bytes, parsed, and when Zenoti produced it."""

    endpoint: str  # "GET /v1/appointments": what messages name
    body: bytes
    document: Any
    read_at_us: int  # the Date header (microseconds since the epoch), else the request time


class Client:
    """Zenoti's API for one source (its key, its share of the bucket)."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        limiter: rate.Limiter,
    ) -> None:
        self.variable = settings_module.source_api_key_variable(source)
        key = settings.api_keys.get(source, "")
        if not key:
            raise errors.ConfigError(
                f"{self.variable} is not set: backfill needs the Zenoti API key of "
                + (f"source {source!r}" if source else "the default source")
                + " (Zenoti: Admin > Setup > Apps, a backend app)"
            )
        self._limiter = limiter
        self._scale = settings.api_rate_window_seconds / 60.0
        self._http = httpx.Client(
            base_url=settings.api_url,
            headers={"Authorization": f"apikey {key}", "Accept": "application/json"},
            timeout=settings.api_timeout_seconds,
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, endpoint: str, params: dict[str, Any]) -> Answer:
        return self._call("GET", path, endpoint, params, None)

    def post(self, path: str, endpoint: str, params: dict[str, Any], body: Any) -> Answer:
        return self._call("POST", path, endpoint, params, body)

    def _call(
        self, method: str, path: str, endpoint: str, params: dict[str, Any], body: Any
    ) -> Answer:
        endpoint = f"{method} {endpoint}"
        failures, throttled, last = 0, 0, ""
        while failures < MAX_ATTEMPTS:
            self._limiter.wait()
            requested_us = time.time_ns() // 1000
            try:
                response = self._http.request(method, path, params=params, json=body)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"unreachable ({type(exc).__name__})"
            else:
                self._limiter.observe(response.headers)
                outcome = self._judge(endpoint, response, requested_us)
                if isinstance(outcome, Answer):
                    return outcome
                if outcome == "throttled":
                    throttled += 1
                    if throttled > MAX_THROTTLED:
                        raise errors.ApiFailed(f"{endpoint}: throttled (429) {throttled} times")
                    continue
                last = outcome
            failures += 1
            log.warning("api_call_failed", endpoint=endpoint, attempt=failures, reason=last)
            if failures < MAX_ATTEMPTS:
                time.sleep(self._backoff(failures))
        raise errors.ApiFailed(f"{endpoint}: failed {failures} times; last: {last}")

    def _judge(self, endpoint: str, response: httpx.Response, requested_us: int) -> Answer | str:
        """The answer, or why it is to be tried again ("throttled" for a 429)."""
        status = response.status_code
        if status == 429:
            wait = rate.header_number(response.headers.get("Retry-After"))
            log.info("api_throttled", endpoint=endpoint, retry_after=wait)
            self._limiter.defer(
                wait if wait is not None else self._seconds(RETRY_AFTER_DEFAULT_SECONDS)
            )
            return "throttled"
        if status in (401, 403):
            raise self._refused(endpoint, f"HTTP {status}")
        if status >= 500:
            return f"HTTP {status}"
        try:
            document = json.loads(response.content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None
            if status < 300:
                raise errors.ApiShapeError(f"{endpoint}: the answer is not JSON") from None
        code = _error_code(document)
        if code is not None and code in _REFUSED_CODES:
            raise self._refused(endpoint, f"error {code}")
        if status >= 300:
            raise errors.ApiFailed(
                f"{endpoint}: HTTP {status}" + (f" (error {code})" if code is not None else "")
            )
        if code is not None:
            return f"error {code} inside HTTP 200"
        return Answer(endpoint, response.content, document, self._read_at(response, requested_us))

    def _refused(self, endpoint: str, why: str) -> errors.ApiKeyRefused:
        return errors.ApiKeyRefused(
            f"Zenoti refused the API key in {self.variable} ({endpoint}: {why}); check the key"
            " and its app's API groups (centers, and each resource asked: read)"
        )

    def _read_at(self, response: httpx.Response, requested_us: int) -> int:
        """When Zenoti produced the answer: its Date header, unless it is missing or further
        from our clock than MAX_SKEW_SECONDS (then the request time)."""
        header = response.headers.get("Date")
        try:
            read_at = email.utils.parsedate_to_datetime(header) if header else None
        except (TypeError, ValueError):
            read_at = None
        if read_at is None or read_at.tzinfo is None:
            return requested_us
        read_at_us = int(read_at.timestamp() * 1_000_000)
        skew = (read_at_us - requested_us) / 1_000_000
        if abs(skew) > MAX_SKEW_SECONDS:
            log.warning("api_clock_skew", seconds=round(skew, 1))
            return requested_us
        return read_at_us

    def _backoff(self, failures: int) -> float:
        """Before the next attempt: at least half of the capped exponential step."""
        step = backoff.delay_seconds(failures - 1, BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS, 0.5)
        return self._seconds(step)

    def _seconds(self, seconds: float) -> float:
        """A wait given for a 60 s window, scaled to the configured one."""
        return seconds * self._scale


def _error_code(document: Any) -> int | str | None:
    """The code of a non-null `error` (or .NET-style `Error`); "unknown" without one."""
    if not isinstance(document, dict):
        return None
    error = document.get("error") if document.get("error") is not None else document.get("Error")
    if error is None:
        return None
    code = error.get("code", error.get("StatusCode")) if isinstance(error, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else "unknown"


def shape_error(endpoint: str, field: str, value: Any, wanted: str) -> errors.ApiShapeError:
    """An answer that does not fit: the endpoint, the field and the JSON type it had."""
    return errors.ApiShapeError(
        f"{endpoint}: `{field}` must be {wanted}, got {errors.json_type(value)}"
    )


def split_array(body: bytes, endpoint: str, key: str = "") -> list[tuple[Any, bytes]]:
    """The elements of a JSON array (the answer, or its top-level member `key`), each with its
    exact bytes as received: a record enters the pipeline as the bytes Zenoti sent, not as we
    would write it again. The answer has been parsed once already: it is valid JSON."""
    text = body.decode("utf-8")
    i = _member(text, key, endpoint) if key else _skip(text, 0)
    if text[i : i + 1] != "[":
        raise errors.ApiShapeError(f"{endpoint}: `{key or '(answer)'}` must be an array")
    return _elements(text, i)


def _member(text: str, key: str, endpoint: str) -> int:
    """Where the value of the top-level object's member `key` starts."""
    decoder = json.JSONDecoder()
    i = _skip(text, 0)
    if text[i : i + 1] == "{":
        i = _skip(text, i + 1)
        while text[i : i + 1] == '"':
            name, i = decoder.raw_decode(text, i)
            i = _skip(text, _skip(text, i) + 1)  # past the colon
            if name == key:
                return i
            _, i = decoder.raw_decode(text, i)
            i = _skip(text, i)
            if text[i : i + 1] == ",":
                i = _skip(text, i + 1)
    raise errors.ApiShapeError(f"{endpoint}: `{key}` must be an array, got nothing")


def _elements(text: str, i: int) -> list[tuple[Any, bytes]]:
    decoder = json.JSONDecoder()
    items: list[tuple[Any, bytes]] = []
    i = _skip(text, i + 1)
    if text[i : i + 1] == "]":
        return items
    while True:
        value, end = decoder.raw_decode(text, i)
        items.append((value, text[i:end].encode("utf-8")))
        i = _skip(text, end)
        if text[i : i + 1] == "]":
            return items
        i = _skip(text, i + 1)  # the comma (the document parsed already: it is one)


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i
