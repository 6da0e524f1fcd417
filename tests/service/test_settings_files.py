"""Secrets from files (`<NAME>_FILE`) and empty optional settings, as load_settings() reads the environment.

docker-compose.prod.yml gives the API its database URL only as a file (DATABASE_URL_FILE, on the credentials
volume the migration writes), and passes unset optional variables as "" (`${JWT_ISSUER:-}`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.settings import ConfigError, load_settings

DATABASE_URL = "postgresql://events_api:f1le-db-pass@postgres:5432/events"
GOOD_ENV = {"DATABASE_URL": "postgresql://app:env-db-pass@db.internal:5432/events", "API_KEY": "k" * 24}
JWT_SECRET = "j" * 40
FILE_SETTINGS = ("DATABASE_URL", "REDIS_URL", "API_KEY", "JWT_SECRET")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().removesuffix("_FILE") in FILE_SETTINGS or name.upper().startswith("JWT_"):
            monkeypatch.delenv(name)
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JWT_SECRET", JWT_SECRET)
    return monkeypatch


def secret_file(tmp_path: Path, content: str, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    path.chmod(0o400)
    return path


def refusal(*, expected: str) -> str:
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert message.startswith("refusing to start")
    assert expected in message, message
    return message


def test_each_secret_can_come_from_a_file_without_its_trailing_newline(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": "redis://:r3dis-pass@redis:6379/2",
        "API_KEY": "file-api-key-0123456789",
        "JWT_SECRET": "f" * 48,
    }
    for name, value in values.items():
        environment.delenv(name, raising=False)
        environment.setenv(f"{name}_FILE", str(secret_file(tmp_path, value + "\n", name.lower())))
    settings = load_settings()
    assert settings.database_url.get_secret_value() == DATABASE_URL
    assert settings.redis_url.get_secret_value() == values["REDIS_URL"]
    assert settings.api_key.get_secret_value() == values["API_KEY"]
    assert settings.jwt_secret.get_secret_value() == values["JWT_SECRET"]
    assert settings.database_password == "f1le-db-pass"
    assert {"f1le-db-pass", "r3dis-pass", values["API_KEY"], values["JWT_SECRET"]} <= set(settings.secret_values())


def test_a_file_may_end_without_a_newline_or_with_crlf(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment.delenv("DATABASE_URL")
    environment.setenv("DATABASE_URL_FILE", str(secret_file(tmp_path, DATABASE_URL)))
    assert load_settings().database_url.get_secret_value() == DATABASE_URL
    environment.setenv("DATABASE_URL_FILE", str(secret_file(tmp_path, DATABASE_URL + "\r\n", "crlf")))
    assert load_settings().database_url.get_secret_value() == DATABASE_URL


@pytest.mark.parametrize("name", FILE_SETTINGS)
def test_both_the_variable_and_its_file_are_refused(environment: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    environment.setenv(name, GOOD_ENV.get(name, JWT_SECRET if name == "JWT_SECRET" else "redis://127.0.0.1:1/0"))
    environment.setenv(f"{name}_FILE", str(secret_file(tmp_path, "the-files-content-is-never-shown")))
    message = refusal(expected=f"{name}: both {name} and {name}_FILE are set")
    assert "the-files-content-is-never-shown" not in message


def test_an_empty_variable_beside_a_file_counts_as_unset(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment.setenv("DATABASE_URL", "")
    environment.setenv("DATABASE_URL_FILE", str(secret_file(tmp_path, DATABASE_URL)))
    assert load_settings().database_url.get_secret_value() == DATABASE_URL
    environment.setenv("DATABASE_URL", GOOD_ENV["DATABASE_URL"])
    environment.setenv("DATABASE_URL_FILE", "")
    assert load_settings().database_url.get_secret_value() == GOOD_ENV["DATABASE_URL"]


def test_a_missing_file_is_refused_naming_the_variable_and_the_path(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.delenv("API_KEY")
    missing = tmp_path / "no-such-key"
    environment.setenv("API_KEY_FILE", str(missing))
    refusal(expected=f"API_KEY_FILE: cannot read {missing}: No such file or directory")


def test_a_directory_or_a_non_text_file_is_refused_without_its_content(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.delenv("JWT_SECRET")
    environment.setenv("JWT_SECRET_FILE", str(tmp_path))
    refusal(expected=f"JWT_SECRET_FILE: cannot read {tmp_path}: Is a directory")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfesecret-bytes")
    environment.setenv("JWT_SECRET_FILE", str(binary))
    message = refusal(expected=f"JWT_SECRET_FILE: cannot read {binary}: not UTF-8 text")
    assert "secret-bytes" not in message
    assert "0xff" not in message


def test_a_bad_value_in_a_file_is_named_by_its_variable_and_never_echoed(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.delenv("DATABASE_URL")
    environment.setenv("DATABASE_URL_FILE", str(secret_file(tmp_path, "postgresql://app@db/events-no-password\n")))
    message = refusal(expected="DATABASE_URL (from DATABASE_URL_FILE): must carry database credentials")
    assert "events-no-password" not in message
    environment.delenv("API_KEY")
    environment.setenv("API_KEY_FILE", str(secret_file(tmp_path, "short-key\n", "key")))
    message = refusal(expected="API_KEY (from API_KEY_FILE): must be at least 16 characters")
    assert "short-key" not in message


def test_without_the_variable_or_its_file_the_secret_is_still_required(environment: pytest.MonkeyPatch) -> None:
    environment.delenv("DATABASE_URL")
    refusal(expected="DATABASE_URL: is required")


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_jwt_issuer_or_audience_means_not_set(environment: pytest.MonkeyPatch, value: str) -> None:
    environment.setenv("JWT_ISSUER", value)
    environment.setenv("JWT_AUDIENCE", value)
    settings = load_settings()
    assert settings.jwt_issuer is None
    assert settings.jwt_audience is None


def test_a_set_jwt_issuer_and_audience_are_kept(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("JWT_ISSUER", "https://issuer.example")
    environment.setenv("JWT_AUDIENCE", "events-api")
    settings = load_settings()
    assert (settings.jwt_issuer, settings.jwt_audience) == ("https://issuer.example", "events-api")
