"""The Sentinel form of REDIS_URL, read into the sentinels, the primary's name and its database.

    redis+sentinel://[[user]:password@]host1:26379,host2:26379,host3:26379/<master name>/<db>

The password (and user) are the primary's and replicas'; the sentinels' own password, when they
have one (`requirepass` in sentinel.conf), goes in `?sentinel_password=...`. The port defaults
to 26379 and the database to 0. redis-py's `from_url` does not read this form, so the clients
are built from a SentinelUrl (zenoti_ingest/redis_clients.py). Errors name the variable and
never quote the URL: it may hold a password.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from zenoti_ingest import errors

SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379
QUERY_OPTIONS = ("sentinel_password",)


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)


def is_sentinel(url: str) -> bool:
    return url.partition("://")[0].lower() == SCHEME


def parse(url: str, name: str = "REDIS_URL") -> SentinelUrl:
    """Read a redis+sentinel:// URL; a malformed one raises ConfigError naming `name`."""

    def bad(why: str) -> errors.ConfigError:
        return errors.ConfigError(f"{name}: a {SCHEME}:// URL needs {why}")

    rest = url.partition("://")[2]
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(secret) if colon else None
    sentinels = tuple(_address(item, bad) for item in hosts.split(","))
    master_name, _, db_text = path.partition("/")
    master_name = urllib.parse.unquote(master_name)
    if not master_name:
        raise bad("the primary's name after the hosts: .../<master name>/<db>")
    if not db_text.strip("/").isdigit() and db_text.strip("/") != "":
        raise bad("a database number after the primary's name: .../<master name>/<db>")
    options = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - set(QUERY_OPTIONS))
    if unknown:
        raise bad(f"only these query options: {', '.join(QUERY_OPTIONS)} (got {unknown[0]!r})")
    return SentinelUrl(
        sentinels=sentinels,
        master_name=master_name,
        db=int(db_text.strip("/") or 0),
        username=username,
        password=password,
        sentinel_password=options.get("sentinel_password", [None])[-1] or None,
    )


def _address(item: str, bad) -> tuple[str, int]:
    """host[:port] or [ipv6][:port] of one sentinel."""
    item = item.strip()
    if item.startswith("["):
        host, _, tail = item[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise bad("sentinel addresses, host:port separated by commas")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise bad("each sentinel's port to be a number from 1 to 65535")
    return host, int(port_text or DEFAULT_PORT)
