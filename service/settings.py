"""Typed settings, read only from environment variables named as in the runbook.

Secrets are `SecretStr` so that a settings object printed or logged never shows them, and a settings error
names the variable and the rule it broke, never the value it was given.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import PackageNotFoundError, version
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.bounds import EVENT_OVERHEAD_BYTES, PAGE_ENVELOPE_BYTES

MIN_JWT_SECRET_BYTES = 32
MIN_API_KEY_CHARS = 16
REVISION_ID = re.compile(r"[A-Za-z0-9_.-]+")


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
    api_key: SecretStr = Field(description="Machine-client key compared with `X-API-Key` (required, ≥ 16 chars).")
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
    db_pool_pre_ping: bool = Field(
        default=False,
        description="Also send `SELECT 1` before each use of a pooled connection (closed ones are always "
        "replaced, at no cost); for networks that drop connections without closing them.",
    )
    db_connect_timeout_s: float = Field(default=1.0, gt=0, description="Bound on opening a connection.")
    db_statement_timeout_s: float = Field(
        default=1.5,
        gt=0,
        description="Bound on one statement (server-side `statement_timeout` and client side).",
    )
    db_request_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Bound on all database work of a request; then 503 DEPENDENCY_UNAVAILABLE.",
    )
    db_max_concurrency: int | None = Field(
        default=None, ge=1, description="Database operations at once per worker (default: DB_POOL_SIZE)."
    )
    db_queue_timeout_s: float = Field(
        default=0.25, ge=0, description="Longest wait for a database slot; then 503 DB_OVERLOADED."
    )
    db_max_queue: int = Field(default=100, ge=0, description="Most requests waiting for a database slot per worker.")
    degraded_mode: Literal["none", "read_only"] = Field(
        default="none", description="`read_only`: ingest answers 503 WRITES_DISABLED, reads go on."
    )
    rate_limit_backend: Literal["redis", "memory"] = Field(
        default="redis",
        description="Where rate-limit counters live; `redis` falls back to memory if Redis fails.",
    )
    rate_limit_read: str = Field(default="6000/minute", description="Reads allowed per principal.")
    rate_limit_write: str = Field(default="3000/minute", description="Writes (ingest requests) allowed per principal.")
    rate_limit_anonymous: str = Field(
        default="120/minute", description="Requests without valid credentials allowed per client address."
    )
    rate_limit_redis_timeout_s: float = Field(
        default=0.1, gt=0, description="Bound on a Redis rate-limit call before falling back to memory."
    )
    rate_limit_probe_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a worker on the memory fallback checks whether Redis is back.",
    )
    trusted_proxies: str = Field(
        default="", description="Comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed."
    )
    health_check_timeout_s: float = Field(default=0.5, gt=0, description="Bound on each readiness check.")
    health_cache_s: float = Field(
        default=0.25, ge=0, description="Readiness results are reused this long, so probe storms stay cheap."
    )
    schema_compatible_revisions: str = Field(
        default="",
        description="Comma-separated alembic revisions, besides this release's own head, at which readiness "
        "still passes its `schema` check: e.g. the expand-only revision the next release adds.",
    )
    drain_delay_s: float = Field(
        default=2.0,
        ge=0,
        description="After SIGTERM: readiness says `draining` this long before the listener closes.",
    )
    # -- bounds against hostile or broken clients (README: Bounds) ------------------------------------
    request_header_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="A connection's request headers must be complete this long after it opened (or after "
        "the previous response); else it is closed. Also the keep-alive idle time (hypercorn's "
        "keep_alive_timeout).",
    )
    request_body_timeout_s: float = Field(
        default=30.0, gt=0, description="A whole request body must arrive within this long; else 408."
    )
    request_body_min_rate_bps: int = Field(
        default=4096,
        ge=1,
        description="A body must keep an average upload rate of at least this many bytes/s (after the grace "
        "period); else 408.",
    )
    request_body_grace_s: float = Field(
        default=5.0, gt=0, description="How far (seconds) a body may fall behind REQUEST_BODY_MIN_RATE_BPS."
    )
    response_send_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A response must be taken by the client within this long; else the connection is closed.",
    )
    list_page_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=65536,
        description="Largest list page (bytes of JSON); a page ends early with `next_cursor` to continue.",
    )
    event_attributes_max_bytes: int = Field(
        default=65536,
        ge=1024,
        description="Largest `attributes` of one event (bytes of compact JSON); larger → 422.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")

    @field_validator("jwt_issuer", "jwt_audience", mode="before")
    @classmethod
    def _empty_means_not_set(cls, value: object) -> object:
        # compose passes an unset optional variable as "" (`${JWT_ISSUER:-}`); "" enforced would refuse every token
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rate_limit_read", "rate_limit_write", "rate_limit_anonymous")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must be a rate like `600/minute` or `10/second`") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("schema_compatible_revisions")
    @classmethod
    def _revisions_parse(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            if not REVISION_ID.fullmatch(item):
                raise ValueError(f"{item!r} is not an alembic revision id (letters, digits, '_', '-', '.')")
        return value

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

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_one_redis_py_opens(cls, value: SecretStr) -> SecretStr:
        # redis-py opens only these; a Sentinel URL (redis+sentinel://) would pass here and crash at start.
        if urlsplit(value.get_secret_value()).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must be a redis://, rediss:// or unix:// URL (Sentinel URLs are not supported)")
        return value

    @model_validator(mode="after")
    def _a_page_holds_two_events(self) -> Settings:
        smallest = 2 * (self.event_attributes_max_bytes + EVENT_OVERHEAD_BYTES) + PAGE_ENVELOPE_BYTES
        if self.list_page_max_bytes < smallest:
            raise ValueError(
                f"LIST_PAGE_MAX_BYTES must be at least {smallest} for EVENT_ATTRIBUTES_MAX_BYTES="
                f"{self.event_attributes_max_bytes} (a page holds at least two of the largest events)"
            )
        return self

    @property
    def sqlalchemy_database_url(self) -> str:
        """The same URL with the driver SQLAlchemy needs."""
        url = self.database_url.get_secret_value()
        scheme, rest = url.split("://", 1)
        return f"postgresql+asyncpg://{rest}" if scheme != "postgresql+asyncpg" else url

    @property
    def asyncpg_dsn(self) -> str:
        """The same URL in the form asyncpg takes (no driver suffix)."""
        url = self.database_url.get_secret_value()
        scheme, rest = url.split("://", 1)
        return f"postgresql://{rest}" if scheme == "postgresql+asyncpg" else url

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

    @property
    def db_concurrency(self) -> int:
        return self.db_max_concurrency or self.db_pool_size

    @property
    def compatible_schema_revisions(self) -> frozenset[str]:
        """SCHEMA_COMPATIBLE_REVISIONS as a set (service/schema.py)."""
        return frozenset(part.strip() for part in self.schema_compatible_revisions.split(",") if part.strip())

    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",") if part.strip()]

    def effective_bounds(self) -> dict[str, float]:
        """The bounds against hostile or broken clients in force (service/bounds.py), shown in /health/live so
        that a remote conformance run checks a deployment against its own values."""
        return {
            "request_header_timeout_s": self.request_header_timeout_s,
            "request_body_timeout_s": self.request_body_timeout_s,
            "request_body_min_rate_bps": self.request_body_min_rate_bps,
            "request_body_grace_s": self.request_body_grace_s,
            "response_send_timeout_s": self.response_send_timeout_s,
            "list_page_max_bytes": self.list_page_max_bytes,
            "event_attributes_max_bytes": self.event_attributes_max_bytes,
        }

    def effective_limits(self) -> dict[str, int]:
        """The guard limits in force, shown to operators so a limit rollout can be verified."""
        return {
            "max_request_body_bytes": self.max_request_body_bytes,
            "ingest_max_batch_items": self.ingest_max_batch_items,
        }


def load_settings() -> Settings:
    """Read the environment, or raise ConfigError that names each bad variable without echoing values.

    The secrets DATABASE_URL, REDIS_URL, API_KEY and JWT_SECRET may come from a file instead, named by
    `<NAME>_FILE` (Docker/Kubernetes secrets; the compose file's credentials volume): the file's content without
    its trailing newline. Setting both `<NAME>` and `<NAME>_FILE` is refused; an empty variable counts as unset.
    """
    environ = {name.upper(): value for name, value in os.environ.items()}
    from_files: dict[str, Any] = {}
    problems = []
    for name in ("DATABASE_URL", "REDIS_URL", "API_KEY", "JWT_SECRET"):
        path = environ.get(f"{name}_FILE", "")
        if not path:
            continue
        if environ.get(name, ""):
            problems.append(f"  {name}: both {name} and {name}_FILE are set; set only one of them")
            continue
        try:
            with open(path, encoding="utf-8") as file:
                from_files[name.lower()] = file.read().rstrip("\r\n")
        except UnicodeDecodeError:
            problems.append(f"  {name}_FILE: cannot read {path}: not UTF-8 text")
        except OSError as error:
            problems.append(f"  {name}_FILE: cannot read {path}: {error.strerror or type(error).__name__}")
    if not problems:
        try:
            return Settings(**from_files)  # the rest (and required fields not from files) from the environment
        except ValidationError as error:
            for item in error.errors(include_input=False, include_url=False):
                field = ".".join(str(part) for part in item["loc"])
                name = field.upper() + (f" (from {field.upper()}_FILE)" if field in from_files else "")
                message = "is required" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
                problems.append(f"  {name}: {message}" if name else f"  {message}")
    raise ConfigError("refusing to start, the environment is not valid:\n" + "\n".join(problems))
