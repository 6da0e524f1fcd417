"""`python -m chaos stack up` prints the secrets it generated as lines to paste, as `make serve` does."""

from __future__ import annotations

from pathlib import Path

from chaos.cli.stack import _describe, _exports
from chaos.stack.base import StackEndpoints

SERVICE_ENV = {"API_KEY": "generated-key-0123456789", "JWT_SECRET": "generated-secret-" + "x" * 40}
ENDPOINTS = StackEndpoints(
    api_url="http://127.0.0.1:8000",
    proxy_api_url="http://127.0.0.1:8474",
    database_url="postgresql://postgres:pw@127.0.0.1:5433/events",
    proxied_database_url="postgresql://postgres:pw@127.0.0.1:5434/events",
    redis_url="redis://127.0.0.1:6380/0",
    proxied_redis_url="redis://127.0.0.1:6381/0",
    api_key=SERVICE_ENV["API_KEY"],
    service_log=Path("stack/service.log"),
)


def test_generated_secrets_are_printed_as_export_lines() -> None:
    text = _describe(ENDPOINTS, 1.0, _exports(SERVICE_ENV, {}))
    lines = text.splitlines()
    assert f"  export API_KEY={SERVICE_ENV['API_KEY']}" in lines
    assert f"  export JWT_SECRET={SERVICE_ENV['JWT_SECRET']}" in lines


def test_a_secret_the_operator_passed_is_not_printed() -> None:
    own = {"JWT_SECRET": "the-operators-own-secret"}
    exports = _exports({**SERVICE_ENV, **own}, own)
    assert "the-operators-own-secret" not in exports
    assert "export API_KEY=" in exports
    assert _exports(SERVICE_ENV, SERVICE_ENV) == ""
