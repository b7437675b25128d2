"""Celery hosting: the app, the drain-slot supervisor, the thin tasks, leases."""
