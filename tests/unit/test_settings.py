"""Settings: read once from the environment, with clear errors naming the variable."""

import pytest

from zenoti_ingest import errors
from zenoti_ingest.settings import Settings


def test_defaults_point_at_local_services():
    """With nothing set, the standard local ports and a 1 MiB body limit."""
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url.endswith("@127.0.0.1:5432/zenoti_ingest")
    assert (settings.port, settings.max_body_bytes) == (8000, 1_048_576)


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


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("ZENOTI_INGEST_MAX_BODY_BYTES", "0"),
        ("ZENOTI_INGEST_CLAIM_IDLE_SECONDS", "-1"),
        ("ZENOTI_INGEST_LOG_FORMAT", "xml"),
    ],
)
def test_bad_value_names_the_variable(name, value):
    """A malformed value raises ConfigError whose message names the variable."""
    with pytest.raises(errors.ConfigError, match=name):
        Settings.from_env({name: value})
