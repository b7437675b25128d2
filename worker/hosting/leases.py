"""Drain slots: each worker keeps one drain task per pool process in flight, never more.

A slot's lease (a Redis key holding the id of the token that owns it) is how a worker tells a
lost drain task (its process was SIGKILLed, its message dropped) from a running one: the worker
starts a token for every slot whose lease has expired, and a token whose lease was taken over
quietly stops. Renewal and hand-over compare-and-set, so there is one owner at a time.
"""

from __future__ import annotations

import pathlib
import uuid

import redis

_SCRIPTS = pathlib.Path(__file__).parent


def live_slots(client: redis.Redis, prefix: str) -> int:
    """How many drain slots some worker holds right now (its supervisor has started)."""
    return sum(1 for _ in client.scan_iter(match=f"{prefix}:{KEY_PART}:*", count=100))


KEY_PART = "drain-slot"


class Leases:
    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: float) -> None:
        self._redis = client
        self._prefix = f"{prefix}:{KEY_PART}"
        self._ttl_ms = int(ttl_seconds * 1000)
        self._cas = client.register_script((_SCRIPTS / "lease_hand_over.lua").read_text())
        self._renew = client.register_script((_SCRIPTS / "lease_renew.lua").read_text())

    def key(self, hostname: str, slot: int) -> str:
        return f"{self._prefix}:{hostname}:{slot}"

    def claim(self, hostname: str, slot: int) -> str | None:
        """A new token id if the slot had no live owner, else None."""
        token = uuid.uuid4().hex
        if self._redis.set(self.key(hostname, slot), token, nx=True, px=self._ttl_ms):
            return token
        return None

    def hand_over(
        self, hostname: str, slot: int, token: str, extra_seconds: float = 0
    ) -> str | None:
        """Pass the slot from `token` to a new token; None if `token` no longer owns it."""
        new_token = uuid.uuid4().hex
        ttl_ms = self._ttl_ms + int(extra_seconds * 1000)
        if self._cas(keys=[self.key(hostname, slot)], args=[token, new_token, ttl_ms]):
            return new_token
        return None

    def renew(self, hostname: str, slot: int, token: str) -> bool:
        """Extend the lease while a long round runs; False if `token` lost the slot."""
        return bool(self._renew(keys=[self.key(hostname, slot)], args=[token, self._ttl_ms]))

    def forget(self, hostname: str, slot: int) -> None:
        """Drop a slot's lease: at a worker's start, whatever holds it is a previous life of
        the same node (Celery node names are unique), gone with its process."""
        self._redis.delete(self.key(hostname, slot))

    def holds(self, hostname: str, slot: int, token: str) -> bool:
        owner = self._redis.get(self.key(hostname, slot))
        return owner is not None and owner.decode() == token
