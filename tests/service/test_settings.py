"""RB-AUTH-SECRETS (settings side) and RB-GUARD-ROLLOUT defaults."""

from __future__ import annotations

import pytest

from service.settings import ConfigError, Settings, load_settings

GOOD_ENV = {
    "DATABASE_URL": "postgresql://app:s3cret-db-pass@db.internal:5432/events",
    "API_KEY": "k" * 24,
    "JWT_SECRET": "j" * 32,
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "API_KEY",
        "JWT_SECRET",
        "MAX_REQUEST_BODY_BYTES",
        "INGEST_MAX_BATCH_ITEMS",
        "APP_VERSION",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_good_environment_loads_with_documented_defaults(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.max_request_body_bytes == 1_048_576
    assert settings.ingest_max_batch_items == 1000
    assert settings.sqlalchemy_database_url == "postgresql+asyncpg://app:s3cret-db-pass@db.internal:5432/events"
    assert "s3cret-db-pass" not in repr(settings)


def test_limits_come_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MAX_REQUEST_BODY_BYTES", "2048")
    environment.setenv("INGEST_MAX_BATCH_ITEMS", "10")
    assert load_settings().effective_limits() == {
        "max_request_body_bytes": 2048,
        "ingest_max_batch_items": 10,
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("JWT_SECRET", None, "JWT_SECRET: is required"),
        ("JWT_SECRET", "x" * 31, "JWT_SECRET: must be at least 32 bytes"),
        ("API_KEY", None, "API_KEY: is required"),
        ("API_KEY", "short", "API_KEY: must be at least 16 characters"),
        ("DATABASE_URL", None, "DATABASE_URL: is required"),
        ("DATABASE_URL", "postgresql://app@db:5432/events", "DATABASE_URL: must carry database credentials"),
        ("DATABASE_URL", "mysql://a:b@db/events", "DATABASE_URL: must be a postgresql:// URL"),
        ("REDIS_URL", "redis+sentinel://:pw@sentinel:26379/mymaster", "REDIS_URL: must be a redis://"),
        ("MAX_REQUEST_BODY_BYTES", "0", "MAX_REQUEST_BODY_BYTES: Input should be greater than or equal to 1"),
        ("INGEST_MAX_BATCH_ITEMS", "many", "INGEST_MAX_BATCH_ITEMS: Input should be a valid integer"),
    ],
)
def test_bad_environment_is_refused_by_name_without_echoing_values(
    environment: pytest.MonkeyPatch, name: str, value: str | None, expected: str
) -> None:
    if value is None:
        environment.delenv(name)
    else:
        environment.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert expected in message
    assert message.startswith("refusing to start")
    if value:
        assert value not in message


def test_every_setting_is_in_the_readme_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`{name.upper()}`" in readme, f"README's configuration table lacks {name.upper()}"
        assert field.description, f"{name} needs a description"
