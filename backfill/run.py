"""The runner: every planned call not yet done is made, its records enter the stream as
deliveries (exact bytes, path hint, the answer's time), and it is marked done at once.

One run per source at a time (a Postgres session lock). Started again with the same arguments,
a run resumes its unfinished namesake and makes no call already marked done. A resource whose
answers stop fitting (shape) or keep failing stops alone, leaving its calls to a later resume;
a refused key stops the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import uuid_utils

from backfill import checkpoints, plan, rate, resources
from backfill import client as api
from zenoti_ingest import contract, db, errors, logs, redis_clients, snapshots, stream
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)

DONE, INCOMPLETE, INTERRUPTED = "done", "incomplete", "interrupted"


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands after a call."""

    run_id: int
    resource: str
    calls_done: int
    calls_planned: int  # so far: report pages and invoices add calls as they are found
    records_found: int  # by this invocation
    records_new: int  # of those, not already archived as processed (new or changed)
    eta_seconds: float  # the calls left, at the configured pace


@dataclass(frozen=True, slots=True)
class Summary:
    run_id: int
    status: str
    calls_made: int  # by this invocation
    calls: dict[str, tuple[int, int]]  # {resource: (done, planned)} for the whole run
    records_found: int
    records_new: int
    stopped: dict[str, str] = field(default_factory=dict)  # {resource: why it stopped}
    seconds: float = 0.0


def run(
    settings: Settings,
    request: plan.Request,
    report: Callable[[Progress], None] = lambda _: None,
) -> Summary:
    """Run (or resume) the backfill `request` asks for; ConfigError without a key,
    ApiKeyRefused when Zenoti refuses it, BackfillRunning when another run holds the lock."""
    redis = redis_clients.for_enqueue(settings)
    limiter = rate.Limiter(redis, settings, request.source)
    client = api.Client(settings, request.source, limiter)
    try:
        with (
            db.connect(settings.database_url, autocommit=True) as lock_conn,
            db.connect(settings.database_url, autocommit=True) as conn,
        ):
            checkpoints.lock(lock_conn, request.source)
            try:
                run_id, centers = checkpoints.open_run(conn, request)
            except psycopg.errors.UndefinedTable:
                raise errors.DatabaseMissing(
                    "the database has no backfill tables yet: run `zenoti-ingest migrate`"
                ) from None
            log.info("backfill_started", run_id=run_id, source=request.source)
            runner = _Runner(conn, client, stream.Producer(redis, settings), request, run_id)
            try:
                if centers is None:
                    centers = resources.list_centers(client)
                    checkpoints.set_centers(conn, run_id, centers)
                checkpoints.add_calls(conn, run_id, plan.plan(request, centers))
                return runner.go(report, limiter.interval_seconds)
            except BaseException as exc:  # a refused key, Ctrl-C, Redis gone: resumable
                status = INTERRUPTED if isinstance(exc, KeyboardInterrupt) else INCOMPLETE
                checkpoints.finish(conn, run_id, status, _why(exc))
                raise
    finally:
        client.close()


class _Runner:
    def __init__(
        self,
        conn: psycopg.Connection,
        client: api.Client,
        producer: stream.Producer,
        request: plan.Request,
        run_id: int,
    ) -> None:
        self.conn, self.client, self.producer = conn, client, producer
        self.source, self.run_id = request.source, run_id
        self.reread_closed = request.reread_closed
        self.made = self.found = self.new = 0
        self.stopped: dict[str, str] = {}

    def go(self, report: Callable[[Progress], None], interval: float) -> Summary:
        started = time.monotonic()
        while calls := checkpoints.next_calls(self.conn, self.run_id, list(self.stopped)):
            for call in calls:
                if call.resource in self.stopped:
                    continue
                self.call(call)
                counts = checkpoints.progress(self.conn, self.run_id)
                done, planned = _total(counts)
                report(
                    Progress(
                        self.run_id,
                        call.resource,
                        done,
                        planned,
                        self.found,
                        self.new,
                        (planned - done) * interval,
                    )
                )
        status = INCOMPLETE if self.stopped else DONE
        error = "; ".join(f"{r}: {why}" for r, why in self.stopped.items()) or None
        checkpoints.finish(self.conn, self.run_id, status, error)
        log.info("backfill_finished", run_id=self.run_id, status=status, calls=self.made)
        return Summary(
            self.run_id,
            status,
            self.made,
            checkpoints.progress(self.conn, self.run_id),
            self.found,
            self.new,
            dict(self.stopped),
            time.monotonic() - started,
        )

    def call(self, call: plan.Call) -> None:
        """Make one call, enqueue its records, mark it done."""
        try:
            result = resources.execute(self.client, call)
        except errors.ApiKeyRefused:
            raise
        except errors.ApiFailed as exc:
            log.error("backfill_resource_stopped", resource=call.resource, reason=str(exc))
            self.stopped[call.resource] = str(exc)
            return
        more = result.more if self.reread_closed else self.unread(result.more)
        ids = [snapshots.delivery_id(self.source, r.path_hint, r.body) for r in result.records]
        new = len(ids) - len(checkpoints.processed(self.conn, ids))
        for record in result.records:
            self.producer.publish(
                contract.Delivery(
                    ingest_id=str(uuid_utils.uuid7()),
                    received_at_us=result.read_at_us,
                    path_hint=record.path_hint,
                    body=record.body,
                    source=self.source,
                )
            )
        checkpoints.done(self.conn, self.run_id, call, len(ids), new, more)
        self.made += 1
        self.found += len(ids)
        self.new += new

    def unread(self, calls: list[plan.Call]) -> list[plan.Call]:
        """The calls but those reading an invoice already stored closed: Invoice.Closed came
        and Zenoti tells of no edit after close, so its details would change nothing."""
        invoices = [i for i in map(plan.invoice_of, calls) if i]
        closed = checkpoints.closed_invoices(self.conn, invoices)
        return [c for c in calls if plan.invoice_of(c) not in closed]


def _total(counts: dict[str, tuple[int, int]]) -> tuple[int, int]:
    return sum(d for d, _ in counts.values()), sum(p for _, p in counts.values())


def _why(exc: BaseException) -> str:
    if isinstance(exc, errors.ZenotiIngestError):
        return str(exc)
    return type(exc).__name__
