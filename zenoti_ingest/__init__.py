"""zenoti-ingest: Zenoti webhooks into Postgres, through a Redis stream and Celery workers."""
