"""create_app(settings) → the WSGI callable; the routing table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ingress import enqueue, handlers, responses
from zenoti_ingest import contract, logs
from zenoti_ingest import settings as settings_module
from zenoti_ingest.settings import Settings

WEBHOOK_PATH = "/webhooks/zenoti"
WEBHOOK_METHODS = ("POST", "PUT", "PATCH")  # whoever configures the webhook picks the verb
PROBE_METHODS = ("GET", "HEAD")

WsgiApp = Callable[[dict[str, Any], responses.StartResponse], Iterable[bytes]]


def create_app(settings: Settings) -> WsgiApp:
    """The ingress WSGI app; holds one Redis connection pool for the process."""
    enqueuer = enqueue.Enqueuer(settings)
    prefix = WEBHOOK_PATH + "/"

    def app(environ: dict[str, Any], start_response: responses.StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if path == WEBHOOK_PATH or path.startswith(prefix):
            hint = path[len(prefix):] if path != WEBHOOK_PATH else ""
            if hint and not contract.EVENT_TYPE.fullmatch(hint):
                return responses.not_found(start_response)
            if method not in WEBHOOK_METHODS:
                return responses.method_not_allowed(start_response, WEBHOOK_METHODS)
            return handlers.receive(environ, start_response, settings, enqueuer, hint)
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


def create_app_from_env() -> WsgiApp:
    """Factory for the WSGI server (`granian --factory ingress.app:create_app_from_env`)."""
    settings = settings_module.get_settings()
    logs.configure(settings)
    return create_app(settings)
