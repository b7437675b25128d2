"""Backfill from Zenoti's REST API: what the webhooks never delivered, through the same stream.

Imports only the core (zenoti_ingest), like the ingress: client (one call: key, retries,
errors inside 200s), rate (the pace every process of a source shares), plan (resources x
centers x windows → calls), resources (each call: request, shape, records, follow-ups),
answers (an answer's required fields, its records, whether a page follows), checkpoints
(runs and calls in Postgres), run (the runner).
"""
