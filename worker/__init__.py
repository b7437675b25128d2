"""The worker: Celery drain tasks that claim batches of deliveries and write them to Postgres."""
