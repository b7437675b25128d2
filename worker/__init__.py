"""The worker: Celery drain tasks that claim batches of deliveries and write them to Postgres.

The path of one delivery, module by module (the ingress has already XADDed it to the stream):

1. hosting/celery_app.py      the Celery app; at start it adds the supervisor bootstep.
2. hosting/supervisor.py      keeps one drain token per pool process in flight, on the
                              worker's own queue, with a lease per slot (hosting/leases.py,
                              the compare-and-set in lease_*.lua).
3. hosting/tasks.py           `drain_slot`: one round for one slot, with the per-process
                              Redis client and Postgres pool (hosting/process_resources.py);
                              transient failures back off (zenoti_ingest/backoff.py) and retry.
4. pipeline/drain.py          the round: recover what this consumer held, read new entries
                              through the consumer group (zenoti_ingest/stream.py), settle.
5. pipeline/envelope.py       raw bytes → event type, delivery id, event timestamp, data.
6. pipeline/handlers.py       event type → its schema and projection (worker/schemas/*).
7. pipeline/batch.py          the batch in one transaction: archive every delivery, keep
                              one event per delivery id, upsert rows, newest wins per column;
                              a bad delivery becomes a dead letter and never sinks the batch.
8. pipeline/store.py          the SQL of steps 7 (zenoti_ingest/sql), one call per query.
9. back in drain.py           acknowledge the entries only after the commit.

operations/ holds what the CLI runs on the archive: dead letters (list, show, replay,
discard) and reprocess in deadletters.py, rebuild in rebuild.py; replay and reprocess go
back through the stream, so they take the same path as live traffic.
"""
