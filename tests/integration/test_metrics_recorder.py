"""The recorder's flush against a real Redis: exact, and never twice, even when Redis refuses
part of a pipeline."""

from __future__ import annotations

import redis

from zenoti_ingest import metrics


def hash_of(client: redis.Redis, metric: metrics.Metric, prefix: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(metric.key(prefix)).items()}


def test_a_whole_number_after_a_fraction_still_adds_to_a_histogram_sum(redis_url):
    """A sum field holds a float once a fraction was added to it: later whole-number sums are
    added as floats too (HINCRBY on it would be refused), and nothing is counted twice."""
    client = redis.Redis.from_url(redis_url)
    recorder = metrics.Recorder(client, "zi_rec")
    recorder.observe(metrics.BATCH_SECONDS, 0.25)
    recorder.flush()
    recorder.observe(metrics.BATCH_SECONDS, 9.0)
    recorder.flush()
    recorder.flush()  # nothing left to write
    stored = hash_of(client, metrics.BATCH_SECONDS, "zi_rec")
    assert (float(stored["sum"]), stored["count"]) == (9.25, "2")
    assert stored["bucket\t0.25"] == "1" and stored["bucket\t+Inf"] == "1"  # 9 s > 2.5 s


def test_a_refused_command_goes_back_alone(redis_url):
    """One metric's hash is unwritable (WRONGTYPE): the other metrics are written once, and
    the refused counts wait in the buffer until Redis takes them, then are written once."""
    client = redis.Redis.from_url(redis_url)
    recorder = metrics.Recorder(client, "zi_rec")
    client.set(metrics.DEAD_LETTERS.key("zi_rec"), "not a hash")
    recorder.inc(metrics.REQUESTS, "", "accepted", amount=3)
    recorder.inc(metrics.DEAD_LETTERS, "schema")
    recorder.flush()
    recorder.flush()  # the refused one is refused again; the rest is not sent again
    assert metrics.counts(client, "zi_rec", metrics.REQUESTS) == {("", "accepted"): 3}
    client.delete(metrics.DEAD_LETTERS.key("zi_rec"))
    recorder.flush()
    recorder.flush()
    assert metrics.counts(client, "zi_rec", metrics.DEAD_LETTERS) == {("schema",): 1}
    assert metrics.counts(client, "zi_rec", metrics.REQUESTS) == {("", "accepted"): 3}


def test_redis_down_keeps_everything_for_the_next_flush(redis_url):
    """A Redis that can't be reached: the flush raises nothing and loses nothing."""
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    recorder = metrics.Recorder(down, "zi_rec")
    recorder.inc(metrics.REQUESTS, "", "enqueue_failed")
    recorder.observe(metrics.ENQUEUE_SECONDS, 0.002)
    recorder.flush()
    recorder._redis = redis.Redis.from_url(redis_url)  # Redis is back
    recorder.flush()
    client = redis.Redis.from_url(redis_url)
    assert metrics.counts(client, "zi_rec", metrics.REQUESTS) == {("", "enqueue_failed"): 1}
    assert hash_of(client, metrics.ENQUEUE_SECONDS, "zi_rec")["count"] == "1"
