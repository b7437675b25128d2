"""The usual stack: a Flask view that hands each webhook to Celery with `apply_async`."""

from __future__ import annotations

import flask

from baselines import celery_stack

app = flask.Flask(__name__)
handle_webhook = celery_stack.app.tasks[celery_stack.TASK_NAME]


@app.post("/webhooks/zenoti")
def receive() -> tuple[dict, int]:
    result = handle_webhook.apply_async(args=(flask.request.get_data(as_text=True),))
    return {"task_id": result.id}, 202


@app.get("/readyz")
def readyz() -> dict:
    return {"status": "ready"}
