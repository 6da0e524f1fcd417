"""Typed settings, read only from environment variables named as in the runbook.

Secrets are `SecretStr` so that a settings object printed or logged never shows them, and a settings error
names the variable and the rule it broke, never the value it was given.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_JWT_SECRET_BYTES = 32
MIN_API_KEY_CHARS = 16


def _package_version() -> str:
    try:
        return version("executable-runbook")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


class ConfigError(Exception):
    """The environment does not describe a service that may start; the message says what to fix."""


class Settings(BaseSettings):
    """Service configuration. Every field is an environment variable of the same name, upper-cased."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    database_url: SecretStr = Field(
        description="PostgreSQL URL `postgresql://user:password@host:port/db` (required; `+asyncpg` too)."
    )
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL for rate limits and readiness."
    )
    api_key: SecretStr = Field(
        description="Machine-client key compared with `X-API-Key` (required, ≥ 16 chars)."
    )
    jwt_secret: SecretStr = Field(description="HS256 key for bearer tokens (required, ≥ 32 bytes).")
    jwt_issuer: str | None = Field(default=None, description="When set, tokens must carry this `iss`.")
    jwt_audience: str | None = Field(default=None, description="When set, tokens must carry this `aud`.")
    app_version: str = Field(
        default_factory=_package_version, description="Release reported in `X-App-Version` and health."
    )
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest request body accepted; larger → 413 PAYLOAD_TOO_LARGE."
    )
    ingest_max_batch_items: int = Field(
        default=1000, ge=1, description="Most events in one ingest; more → 413 INGEST_BATCH_TOO_LARGE."
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Connections per worker process.")
    db_connect_timeout_s: float = Field(default=1.0, gt=0, description="Bound on opening a connection.")
    db_statement_timeout_s: float = Field(default=2.0, gt=0, description="Bound on one database statement.")
    health_check_timeout_s: float = Field(default=1.0, gt=0, description="Bound on each readiness check.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key_strong_enough(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if len(key) < MIN_API_KEY_CHARS or key.strip() != key:
            raise ValueError(f"must be at least {MIN_API_KEY_CHARS} characters, without surrounding spaces")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_has_credentials(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
            raise ValueError("must be a postgresql:// URL")
        if not parts.username or not parts.password:
            raise ValueError("must carry database credentials (user and password)")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("must name a host and a database")
        return value

    @property
    def sqlalchemy_database_url(self) -> str:
        """The same URL with the driver SQLAlchemy needs."""
        url = self.database_url.get_secret_value()
        scheme, rest = url.split("://", 1)
        return f"postgresql+asyncpg://{rest}" if scheme != "postgresql+asyncpg" else url

    @property
    def database_password(self) -> str:
        return urlsplit(self.database_url.get_secret_value()).password or ""

    def secret_values(self) -> list[str]:
        """Values the log redactor must never let through."""
        values = [self.api_key.get_secret_value(), self.jwt_secret.get_secret_value(), self.database_password]
        redis_password = urlsplit(self.redis_url.get_secret_value()).password
        if redis_password:
            values.append(redis_password)
        return [value for value in values if value]

    def effective_limits(self) -> dict[str, int]:
        """The guard limits in force, shown to operators so a limit rollout can be verified."""
        return {
            "max_request_body_bytes": self.max_request_body_bytes,
            "ingest_max_batch_items": self.ingest_max_batch_items,
        }


def load_settings() -> Settings:
    """Read the environment, or raise ConfigError that names each bad variable without echoing values."""
    try:
        return Settings()  # required fields come from the environment
    except ValidationError as error:
        problems = []
        for item in error.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in item["loc"]).upper()
            message = (
                "is required" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
            )
            problems.append(f"  {name}: {message}")
        raise ConfigError(
            "refusing to start, the environment is not valid:\n" + "\n".join(problems)
        ) from None
