"""The Sentinel form of REDIS_URL: read in full at start, errors that name the variable and
never quote the password, and the same URL turned into Celery's broker settings."""

from __future__ import annotations

import pytest

from zenoti_ingest import errors, redis_clients, sentinel_url, services
from zenoti_ingest.settings import Settings

URL = "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380,sentinel-c/zi-primary/2"


def test_the_whole_url_is_read():
    target = sentinel_url.parse(URL)
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("sentinel-c", 26379))
    assert (target.master_name, target.db, target.password) == ("zi-primary", 2, "s3cret")
    assert target.username is None and target.sentinel_password is None
    assert "s3cret" not in repr(target)


def test_user_database_default_ipv6_and_the_sentinels_password():
    target = sentinel_url.parse(
        "redis+sentinel://app:p%40ss@[::1]:26379/main?sentinel_password=other"
    )
    assert target.sentinels == (("::1", 26379),)
    assert (target.username, target.password, target.sentinel_password) == ("app", "p@ss", "other")
    assert (target.master_name, target.db) == ("main", 0)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://:s3cret@h1:26379", "primary's name"),
        ("redis+sentinel://:s3cret@h1:26379//0", "primary's name"),
        ("redis+sentinel://:s3cret@h1:26379/main/zero", "database number"),
        ("redis+sentinel://:s3cret@h1:port/main/0", "port"),
        ("redis+sentinel://:s3cret@h1:26379,,h2/main/0", "sentinel addresses"),
        ("redis+sentinel://:s3cret@h1/main/0?ssl=1", "query options"),
    ],
)
def test_a_malformed_url_stops_the_start_naming_the_variable(url, says):
    with pytest.raises(errors.ConfigError) as raised:
        Settings.from_env({"REDIS_URL": url})
    assert "REDIS_URL" in str(raised.value) and says in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_settings_accept_it_and_keep_it_out_of_repr():
    settings = Settings.from_env({"REDIS_URL": URL})
    assert settings.redis_url == URL
    assert "s3cret" not in repr(settings)


def test_celery_gets_kombus_sentinel_form():
    url, options = redis_clients.celery_broker(Settings(redis_url=URL + "?sentinel_password=x%2By"))
    assert url == (
        "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://:s3cret@10.0.0.2:26380/2;"
        "sentinel://:s3cret@sentinel-c:26379/2"
    )
    assert options == {"master_name": "zi-primary", "sentinel_kwargs": {"password": "x+y"}}


def test_a_plain_url_is_left_as_it_is():
    plain = "redis://:pw@127.0.0.1:6379/3"
    assert redis_clients.celery_broker(Settings(redis_url=plain)) == (plain, {})
    assert redis_clients.primary_url(plain) == plain
    assert not sentinel_url.is_sentinel(plain)


def test_messages_show_it_without_either_password():
    shown = services.redact(URL + "?sentinel_password=other")
    assert "s3cret" not in shown and "other" not in shown
    assert "10.0.0.1:26379,10.0.0.2:26380" in shown
