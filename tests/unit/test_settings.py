"""Settings: declared once, read from the environment with errors naming the variable, written
back to the environment for subprocesses, and listed in the README from the same declarations."""

import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from zenoti_ingest import errors
from zenoti_ingest import settings as settings_module
from zenoti_ingest.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
DECLARED = settings_module.declared()
NUMBERS = [s for s in DECLARED if isinstance(s.kind, settings_module.Int | settings_module.Seconds)]


def _ids(declared):
    return [s.env for s in declared]


def test_defaults_point_at_local_services():
    """With nothing set, the standard local ports and a 1 MiB body limit."""
    settings = Settings.from_env({})
    # Compared part by part: only tests/fixtures/services.py spells out a service address.
    redis_url, database_url = map(
        urllib.parse.urlsplit, (settings.redis_url, settings.database_url)
    )
    assert (redis_url.scheme, redis_url.hostname, redis_url.port, redis_url.path) == (
        "redis",
        "127.0.0.1",
        6379,
        "/0",
    )
    assert (database_url.hostname, database_url.port, database_url.path) == (
        "127.0.0.1",
        5432,
        "/zenoti_ingest",
    )
    assert (settings.port, settings.max_body_bytes) == (8000, 1_048_576)
    assert settings == Settings()


def test_environment_overrides():
    """Bare REDIS_URL, DATABASE_URL, PORT; ours prefixed ZENOTI_INGEST_."""
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://r:1/2",
            "DATABASE_URL": "postgresql://d/e",
            "PORT": "9000",
            "ZENOTI_INGEST_BATCH_SIZE": "50",
            "ZENOTI_INGEST_LOG_LEVEL": "debug",
        }
    )
    assert (settings.redis_url, settings.database_url) == ("redis://r:1/2", "postgresql://d/e")
    assert (settings.port, settings.batch_size, settings.log_level) == (9000, 50, "DEBUG")


def test_only_three_variables_are_bare():
    """Every variable but REDIS_URL, DATABASE_URL and PORT starts with ZENOTI_INGEST_."""
    bare = {s.env for s in DECLARED if not s.env.startswith("ZENOTI_INGEST_")}
    assert bare == {"REDIS_URL", "DATABASE_URL", "PORT"}


@pytest.mark.parametrize("declared", DECLARED, ids=_ids(DECLARED))
def test_each_default_reads_back_from_its_string_form(declared):
    """A setting's default, written to the environment by to_env, reads back as that default."""
    env = Settings().to_env()
    assert declared.env in env
    read = Settings.from_env({declared.env: env[declared.env]})
    assert getattr(read, declared.attribute) == declared.default()


def test_changed_settings_survive_the_round_trip():
    """Every setting changed from its default (fractions of seconds, named sources, a libpq
    string) comes back equal from to_env and from_env: a subprocess reads what we meant."""
    changed = Settings(
        redis_url="rediss://:pw@cache:6380/3",
        database_url="host=/tmp dbname=zi password='a b'",
        host="127.0.0.1",
        port=65535,
        max_body_bytes=1,
        webhook_secrets={"": ("old", "new"), "east-1": ("e",), "west": ()},
        signature_scheme="standard-webhooks",
        signature_header="x-sig",
        signature_algorithm="sha512",
        require_signature=True,
        redis_prefix="zi_other",
        enqueue_timeout_seconds=0.25,
        wait_replicas=2,
        wait_timeout_ms=1,
        ingress_workers=3,
        worker_concurrency=4,
        worker_name="w@%h",
        batch_size=1,
        read_block_ms=7,
        drain_round_seconds=0.1,
        claim_idle_seconds=1e-3,
        poison_after_deliveries=2,
        max_deliveries=4,
        retry_base_seconds=0.0,
        retry_max_seconds=0.5,
        retry_for_seconds=86400.125,
        db_pool_size=9,
        data_dir=Path("/var/lib/zi"),
        log_level="DEBUG",
        log_format="json",
        metrics=False,
        metrics_port=9100,
        archive_days=7,
        event_log_days=30,
        dedup_days=2,
        storage_check_seconds=0.25,
        api_keys={"": "k", "east-1": "e"},
        api_url="http://127.0.0.1:1",
        api_calls_per_minute=7,
        api_rate_window_seconds=6.5,
        api_timeout_seconds=0.5,
    )
    unchanged = [s.env for s in DECLARED if getattr(changed, s.attribute) == s.default()]
    assert unchanged == [], "the round trip should change every setting"
    assert Settings.from_env(changed.to_env()) == changed


def test_to_env_names_every_variable_so_nothing_is_inherited():
    """to_env sets every declared variable, so a subprocess given os.environ plus to_env()
    reads exactly these settings, whatever the parent's environment held."""
    stale = {s.env: "stale" for s in DECLARED}
    assert set(Settings().to_env()) >= set(stale)
    assert Settings.from_env({**stale, **Settings().to_env()}) == Settings()


@pytest.mark.parametrize("declared", NUMBERS, ids=_ids(NUMBERS))
def test_numeric_bounds_are_enforced_naming_the_variable(declared):
    """Each number's declared lower bound: the bound is accepted, just under it is a
    ConfigError naming the variable; zero is accepted exactly where declared."""
    kind, name = declared.kind, declared.env
    if isinstance(kind, settings_module.Int):
        assert getattr(Settings.from_env({name: str(kind.minimum)}), declared.attribute) == (
            kind.minimum
        )
        with pytest.raises(errors.ConfigError, match=f"^{name} must be at least {kind.minimum}"):
            Settings.from_env({name: str(kind.minimum - 1)})
    else:
        with pytest.raises(errors.ConfigError, match=f"^{name} must be"):
            Settings.from_env({name: "-0.5"})
        if kind.zero:
            assert getattr(Settings.from_env({name: "0"}), declared.attribute) == 0
        else:
            with pytest.raises(errors.ConfigError, match=f"^{name} must be greater than 0"):
                Settings.from_env({name: "0"})


@pytest.mark.parametrize(
    ("name", "zero_accepted"),
    [
        ("ZENOTI_INGEST_RETRY_BASE_SECONDS", True),
        ("ZENOTI_INGEST_RETRY_MAX_SECONDS", True),
        ("ZENOTI_INGEST_RETRY_FOR_SECONDS", True),
        ("ZENOTI_INGEST_WAIT_REPLICAS", True),
        ("ZENOTI_INGEST_DRAIN_ROUND_SECONDS", False),
        ("ZENOTI_INGEST_CLAIM_IDLE_SECONDS", False),
        ("ZENOTI_INGEST_ENQUEUE_TIMEOUT_SECONDS", False),
        ("ZENOTI_INGEST_BATCH_SIZE", False),
        ("ZENOTI_INGEST_READ_BLOCK_MS", False),
        ("ZENOTI_INGEST_WAIT_TIMEOUT_MS", False),
        ("PORT", False),
    ],
)
def test_zero_is_accepted_where_it_makes_sense(name, zero_accepted):
    """Retrying at once or waiting for no replica are sensible; a drain round of no time, an
    empty batch, or an unbounded Redis wait (BLOCK 0, WAIT 0) are not."""
    if zero_accepted:
        Settings.from_env({name: "0"})
    else:
        with pytest.raises(errors.ConfigError, match=f"^{name} "):
            Settings.from_env({name: "0"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "ZENOTI_INGEST_BATCH_SIZE",
            "x",
            "ZENOTI_INGEST_BATCH_SIZE must be a whole number, got 'x'",
        ),
        ("ZENOTI_INGEST_BATCH_SIZE", "2.5", "must be a whole number, got '2.5'"),
        ("PORT", "eighty", "PORT must be a whole number, got 'eighty'"),
        ("PORT", "65536", "PORT must be at most 65535, got 65536"),
        ("PORT", "0", "PORT must be at least 1, got 0"),
        ("ZENOTI_INGEST_MAX_BODY_BYTES", "0", "must be at least 1"),
        ("ZENOTI_INGEST_CLAIM_IDLE_SECONDS", "soon", "must be a number, got 'soon'"),
        ("ZENOTI_INGEST_CLAIM_IDLE_SECONDS", "-1", "must be greater than 0, got -1"),
        ("ZENOTI_INGEST_RETRY_BASE_SECONDS", "-1", "must be at least 0, got -1"),
        ("ZENOTI_INGEST_RETRY_FOR_SECONDS", "nan", "must be a finite number, got 'nan'"),
        ("ZENOTI_INGEST_RETRY_MAX_SECONDS", "inf", "must be a finite number, got 'inf'"),
        ("ZENOTI_INGEST_LOG_FORMAT", "xml", "must be auto, json or console, got 'xml'"),
        ("ZENOTI_INGEST_LOG_LEVEL", "loud", "must be DEBUG, INFO, WARNING or ERROR"),
        ("ZENOTI_INGEST_SIGNATURE_SCHEME", "md5", "must be zenoti-hmac or standard-webhooks"),
        ("ZENOTI_INGEST_REQUIRE_SIGNATURE", "maybe", "must be 1 or 0 (true or false)"),
        ("ZENOTI_INGEST_SOURCES", "East Coast", "'East Coast' is not a source name"),
    ],
)
def test_bad_value_names_the_variable(name, value, message):
    """A malformed value raises ConfigError whose message names the variable and says why."""
    with pytest.raises(errors.ConfigError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(name)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "redis://:pw@cache:6379/1"),
        ("REDIS_URL", "REDISS://cache:6380"),
        ("REDIS_URL", "unix:///run/redis.sock?db=2"),
        ("DATABASE_URL", "postgresql://u:pw@db:5432/zi"),
        ("DATABASE_URL", "postgres://db/zi"),
        ("DATABASE_URL", "host=/run/postgresql dbname=zi"),
        ("DATABASE_URL", "host = db port=5432 password='it\\'s here' user=zi"),
    ],
)
def test_service_urls_of_the_accepted_forms_are_kept(name, value):
    """Redis URLs redis://, rediss://, unix://; Postgres URLs postgresql://, postgres:// or a
    libpq keyword=value string: each read as given."""
    settings = Settings.from_env({name: value})
    assert value in (settings.redis_url, settings.database_url)


@pytest.mark.parametrize(
    ("name", "value", "got"),
    [
        ("REDIS_URL", "http://user:hunter2@cache:6379", "got a http:// URL"),
        # kombu's spelling; ours is redis+sentinel:// (tests/unit/test_sentinel_url.py)
        ("REDIS_URL", "sentinel://:hunter2@s1:26379/mymaster", "got a sentinel://"),
        ("REDIS_URL", "cache:6379 hunter2", "got no URL scheme"),
        ("DATABASE_URL", "mysql://root:hunter2@db/zi", "got a mysql:// URL"),
        ("DATABASE_URL", "db hunter2", "got no URL scheme"),
        ("DATABASE_URL", "password='hunter2", "got no URL scheme"),
    ],
)
def test_bad_service_url_names_the_variable_never_its_password(name, value, got):
    """A URL of another scheme, or no URL at all, is a ConfigError naming the variable and the
    scheme it got, never the value (it may hold a password)."""
    with pytest.raises(errors.ConfigError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"{name} must be a ")
    assert got in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_named_sources_keep_their_own_secrets():
    """ZENOTI_INGEST_SOURCES lists named sources; each reads ZENOTI_INGEST_SOURCE_<NAME>_
    WEBHOOK_SECRETS (dashes as underscores); one without a variable has no secret."""
    settings = Settings.from_env(
        {
            "ZENOTI_INGEST_WEBHOOK_SECRETS": "main, next",
            "ZENOTI_INGEST_SOURCES": "east-1,west",
            "ZENOTI_INGEST_SOURCE_EAST_1_WEBHOOK_SECRETS": "e",
        }
    )
    assert settings.webhook_secrets == {"": ("main", "next"), "east-1": ("e",), "west": ()}


def test_secrets_stay_out_of_repr_and_the_readme_table():
    """repr(settings) (what a log line or a traceback would show) holds no secret and no URL
    that may carry a password; the README table shows no secret default."""
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://:hunter2@cache/0",
            "DATABASE_URL": "postgresql://zi:hunter2@db/zi",
            "ZENOTI_INGEST_WEBHOOK_SECRETS": "hunter2",
        }
    )
    assert "hunter2" not in repr(settings)
    rows = [line for line in settings_module.markdown_table().splitlines() if "SECRETS" in line]
    assert rows and all("| none |" in row for row in rows)


def _readme_table() -> str:
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))


def test_readme_table_is_the_declared_one():
    """The README's configuration table is generated from the declarations, unedited."""
    assert _readme_table() == settings_module.markdown_table(), (
        "README.md's table under '## Configuration' differs from the settings declared in "
        "zenoti_ingest/settings.py: replace it with the output of "
        "`python -m zenoti_ingest.settings --markdown`"
    )


def test_markdown_command_prints_the_table():
    """`python -m zenoti_ingest.settings --markdown` prints exactly the generated table."""
    printed = subprocess.run(
        [sys.executable, "-m", "zenoti_ingest.settings", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == settings_module.markdown_table()
    assert re.search(r"^\| `ZENOTI_INGEST_BATCH_SIZE` \| `500` \|", printed, re.MULTILINE)
