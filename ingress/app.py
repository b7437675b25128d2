"""create_app(settings) → the WSGI callable; the routing table."""

from __future__ import annotations

import multiprocessing.util
from collections.abc import Callable, Iterable
from typing import Any

from ingress import auth, handlers, responses
from zenoti_ingest import contract, errors, logs, metrics, redis_clients, stream
from zenoti_ingest import settings as settings_module
from zenoti_ingest.settings import Settings

WEBHOOK_PATH = "/webhooks/zenoti"
WEBHOOK_METHODS = ("POST", "PUT", "PATCH")  # whoever configures the webhook picks the verb
PROBE_METHODS = ("GET", "HEAD")

log = logs.get_logger(__name__)

WsgiApp = Callable[[dict[str, Any], responses.StartResponse], Iterable[bytes]]


def create_app(settings: Settings) -> WsgiApp:
    """The ingress WSGI app; holds one Redis connection pool for the process."""
    client = redis_clients.for_enqueue(settings)
    enqueuer = stream.Producer(client, settings)
    recorder = metrics.Recorder(client, settings.redis_prefix, enabled=settings.metrics)
    if settings.metrics:
        recorder.flush_in_background()
        # granian forks its worker processes, and a forked multiprocessing child leaves through
        # os._exit once its server has stopped (SIGTERM): atexit never runs there, this does.
        # Without it a stopped ingress loses up to a second of counts.
        multiprocessing.util.Finalize(None, recorder.flush, exitpriority=10)
    verifiers = auth.verifiers(settings)
    _warn_if_unauthenticated(_unauthenticated(settings, verifiers))
    prefix = WEBHOOK_PATH + "/"

    def app(environ: dict[str, Any], start_response: responses.StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if path == WEBHOOK_PATH or path.startswith(prefix):
            source, hint = split_webhook_path(path[len(prefix) :])
            if source not in verifiers or (hint and not contract.EVENT_TYPE.fullmatch(hint)):
                recorder.inc(metrics.REQUESTS, "", "not_found")  # never an unknown label
                return responses.not_found(start_response)
            if method not in WEBHOOK_METHODS:
                recorder.inc(metrics.REQUESTS, source, "method_not_allowed")
                return responses.method_not_allowed(start_response, WEBHOOK_METHODS)
            return handlers.receive(
                environ,
                start_response,
                settings,
                enqueuer,
                recorder,
                handlers.Route(source, hint, verifiers[source]),
            )
        if path == "/healthz":
            if method not in PROBE_METHODS:
                return responses.method_not_allowed(start_response, PROBE_METHODS)
            return handlers.healthz(environ, start_response)
        if path == "/readyz":
            if method not in PROBE_METHODS:
                return responses.method_not_allowed(start_response, PROBE_METHODS)
            return handlers.readyz(environ, start_response, enqueuer)
        return responses.not_found(start_response)

    return app


def split_webhook_path(rest: str) -> tuple[str, str]:
    """What follows /webhooks/zenoti/: "@east/Appointment.Started" → ("east", "Appointment.
    Started"); "Appointment.Started" → ("", ...), the default source."""
    if rest.startswith("@"):
        source, _, hint = rest[1:].partition("/")
        return source, hint
    return "", rest


def check_settings(settings: Settings) -> None:
    """The ConfigError create_app would raise (a malformed secret; a source without one under
    ZENOTI_INGEST_REQUIRE_SIGNATURE), raised here: `serve` calls this before it hands over to
    granian, whose worker processes would print a traceback each and be respawned."""
    _unauthenticated(settings, auth.verifiers(settings))


def _unauthenticated(settings: Settings, verifiers: dict[str, auth.Verifier | None]) -> list[str]:
    """The sources without a secret: fatal with ZENOTI_INGEST_REQUIRE_SIGNATURE=1."""
    open_sources = [source or "(default)" for source, v in verifiers.items() if v is None]
    if open_sources and settings.require_signature:
        raise errors.ConfigError(
            "ZENOTI_INGEST_REQUIRE_SIGNATURE is set but these sources have no secret: "
            f"{', '.join(open_sources)} (set ZENOTI_INGEST_WEBHOOK_SECRETS, or "
            "ZENOTI_INGEST_SOURCE_<NAME>_WEBHOOK_SECRETS)"
        )
    return open_sources


def _warn_if_unauthenticated(open_sources: list[str]) -> None:
    """Without a secret the ingress runs (local use), and says so loudly."""
    if not open_sources:
        return
    log.warning(
        "deliveries_not_authenticated",
        sources=open_sources,
        hint="anyone who can reach the ingress can post deliveries; set "
        "ZENOTI_INGEST_WEBHOOK_SECRETS and ZENOTI_INGEST_REQUIRE_SIGNATURE=1",
    )


def create_app_from_env() -> WsgiApp:
    """Factory for the WSGI server (`granian --factory ingress.app:create_app_from_env`)."""
    settings = settings_module.get_settings()
    logs.configure(settings)
    return create_app(settings)
