"""The service as operators run it (`python -m service` under hypercorn): body guard over a real socket,
limit rollout by restart (RB-GUARD-ROLLOUT), refusal to start without secrets (RB-AUTH-SECRETS)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from chaos.stack.migrations import REPO_ROOT
from chaos.stack.service import ServiceProcess
from tests.helpers import API_KEY_HEADERS, TEST_API_KEY, TEST_JWT_SECRET, event

pytestmark = pytest.mark.integration

BODY_LIMIT = 4096
BATCH_LIMIT = 20


@pytest.fixture(scope="module")
def service_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "API_KEY": TEST_API_KEY,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT),
        "INGEST_MAX_BATCH_ITEMS": str(BATCH_LIMIT),
        "APP_VERSION": "1.0.0-served",
    }


@pytest.fixture(scope="module")
def service(service_env: dict[str, str]) -> Iterator[ServiceProcess]:
    with ServiceProcess(service_env, workers=1) as running:
        yield running


def _raw_request(
    port: int, head: str, body_parts: list[bytes], *, read_early: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Send a request over a plain socket; with read_early, stop sending once the server has answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            if read_early:
                sock.setblocking(False)
                try:
                    peeked = sock.recv(1, socket.MSG_PEEK)
                except BlockingIOError:
                    peeked = b""
                sock.setblocking(True)
                if peeked:
                    break
        data = b""
        sock.settimeout(5)
        while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, payload


def _expected_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.decode(errors="replace").split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(head) + 4 + int(line.split(":")[1])
    return 0


async def _count(database_url: str, source: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM events WHERE source = $1", source))
    finally:
        await connection.close()


def _head(port: int, extra: str) -> str:
    return (
        f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {TEST_API_KEY}\r\n"
        f"Content-Type: application/json\r\nX-Request-Id: guard-test\r\n{extra}\r\n"
    )


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def test_declared_oversize_is_refused_before_the_body_is_sent(service: ServiceProcess) -> None:
    # Only the headers go out: the 413 arrives without the server waiting for a single body byte.
    status, headers, payload = _raw_request(
        service.port, _head(service.port, f"Content-Length: {BODY_LIMIT + 1}\r\n"), []
    )
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert headers["x-request-id"] == "guard-test"
    problem = json.loads(payload)
    assert (problem["code"], problem["request_id"], problem["limit_bytes"]) == (
        "PAYLOAD_TOO_LARGE",
        "guard-test",
        BODY_LIMIT,
    )


async def test_chunked_oversize_is_refused_as_soon_as_it_passes_the_limit(
    service: ServiceProcess, database_url: str
) -> None:
    source = "chunked-oversize"
    valid_start = json.dumps({"items": [event(source)] * 3})[:-2].encode()  # a real, unfinished batch
    filler = b" " * 1024
    # Far more than the limit is offered, but the server answers after ~limit bytes and we stop sending.
    parts = [_chunk(valid_start)] + [_chunk(filler)] * 64 + [b"0\r\n\r\n"]
    status, headers, payload = _raw_request(
        service.port, _head(service.port, "Transfer-Encoding: chunked\r\n"), parts, read_early=True
    )
    assert status == 413
    assert json.loads(payload)["code"] == "PAYLOAD_TOO_LARGE"
    assert headers["x-request-id"] == "guard-test"
    assert await _count(database_url, source) == 0


async def test_chunked_body_under_the_limit_is_served(service: ServiceProcess, database_url: str) -> None:
    source = "chunked-fine"
    body = json.dumps({"items": [event(source), event(source)]}).encode()
    parts = [_chunk(body[:50]), _chunk(body[50:]), b"0\r\n\r\n"]
    status, _, payload = _raw_request(service.port, _head(service.port, "Transfer-Encoding: chunked\r\n"), parts)
    assert status == 201
    assert json.loads(payload)["accepted"] == 2
    assert await _count(database_url, source) == 2


def test_over_limit_batch_is_refused_with_the_limit(service: ServiceProcess, database_url: str) -> None:
    source = "batch-over-limit"
    small = {"source": source, "type": "t", "occurred_at": "2026-01-01T00:00:00Z"}
    response = httpx.post(
        f"{service.base_url}/api/v1/events",
        json={"items": [small] * (BATCH_LIMIT + 1)},
        headers=API_KEY_HEADERS,
    )
    assert response.status_code == 413
    problem = response.json()
    assert (problem["code"], problem["limit"], problem["received"]) == (
        "INGEST_BATCH_TOO_LARGE",
        BATCH_LIMIT,
        21,
    )
    assert asyncio.run(_count(database_url, source)) == 0


def test_lowered_limits_take_effect_after_a_restart(service_env: dict[str, str]) -> None:
    """RB-GUARD-ROLLOUT: restart with lower limits, verify them from outside, and see them enforced."""
    lowered = {**service_env, "MAX_REQUEST_BODY_BYTES": "1024", "INGEST_MAX_BATCH_ITEMS": "2"}
    small = {"source": "rollout", "type": "t", "occurred_at": "2026-01-01T00:00:00Z"}
    with ServiceProcess(lowered) as service:
        live = httpx.get(f"{service.base_url}/health/live").json()
        assert live["limits"] == {"max_request_body_bytes": 1024, "ingest_max_batch_items": 2}
        metrics = httpx.get(f"{service.base_url}/metrics").text
        assert 'config_limit{name="ingest_max_batch_items"} 2.0' in metrics
        three = httpx.post(f"{service.base_url}/api/v1/events", json={"items": [small] * 3}, headers=API_KEY_HEADERS)
        assert three.json()["code"] == "INGEST_BATCH_TOO_LARGE"
        big = httpx.post(
            f"{service.base_url}/api/v1/events",
            json={**small, "attributes": {"x": "y" * 1100}},
            headers=API_KEY_HEADERS,
        )
        assert big.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_serve_script_uses_the_servers_named_in_the_environment(service_env: dict[str, str]) -> None:
    """`make serve` honours DATABASE_URL/REDIS_URL/API_KEY/JWT_SECRET: nothing embedded is started."""
    env = {**os.environ, **service_env}
    result = subprocess.run(
        [sys.executable, "scripts/serve.py", "--smoke", "--port", "0", "--workers", "1"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database: DATABASE_URL from the environment" in result.stdout
    assert "redis: REDIS_URL from the environment" in result.stdout
    assert "generated" not in result.stdout
    assert "smoke: 10/10 passed" in result.stdout
    for secret in (TEST_API_KEY, TEST_JWT_SECRET, service_env["DATABASE_URL"]):
        assert secret not in result.stdout + result.stderr


def _serve_interactively(env: dict[str, str]) -> tuple[str, str]:
    """`make serve` until it says how to stop it: (what it printed, its `Try:` block as a shell script).

    The sample commands are run with bash while the API is up, with only the environment given here."""
    process = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--port", "0", "--workers", "1"],
        cwd=REPO_ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        for line in process.stdout:
            printed.append(line)
            if line.startswith("Ctrl-C stops"):
                break
        output = "".join(printed)
        assert "Ctrl-C stops" in output, output
        block = output.split("Try:", 1)[1].split("Ctrl-C stops", 1)[0]
        exports = "".join(line for line in printed if line.strip().startswith("export "))
        shell = subprocess.run(
            ["bash", "-c", f"set -eu\n{exports}\n{block}"],
            env={"PATH": os.environ["PATH"], **{k: v for k, v in env.items() if k == "API_KEY"}},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    return output + rest, shell.stdout + shell.stderr


def _no_secret_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("API_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL")}


def test_serve_never_prints_the_operators_own_secrets(service_env: dict[str, str]) -> None:
    """The sample curl lines say `$API_KEY`; the key, secret and database URL from the environment never appear."""
    env = {**_no_secret_env(), **service_env}
    output, sample = _serve_interactively(env)
    for secret in (TEST_API_KEY, TEST_JWT_SECRET, service_env["DATABASE_URL"], service_env["REDIS_URL"]):
        assert secret not in output, output
    assert "X-API-Key: $API_KEY" in output
    assert "export " not in output, "nothing was generated, so there is nothing to export"
    assert '"accepted":1' in sample.replace(" ", ""), f"the sample commands work as printed:\n{sample}"


def test_serve_prints_a_generated_key_once_as_a_line_to_paste(service_env: dict[str, str]) -> None:
    env = {**_no_secret_env(), "DATABASE_URL": service_env["DATABASE_URL"], "REDIS_URL": service_env["REDIS_URL"]}
    output, sample = _serve_interactively(env)
    generated = {}
    for line in output.splitlines():
        name, _, value = line.strip().removeprefix("export ").partition("=")
        if line.strip().startswith("export ") and name in ("API_KEY", "JWT_SECRET"):
            generated[name] = value
    assert set(generated) == {"API_KEY", "JWT_SECRET"}, output
    for name, value in generated.items():
        assert len(value) >= 24, name
        assert output.count(value) == 1, f"{name} is printed once, in its export line:\n{output}"
    assert service_env["DATABASE_URL"] not in output
    assert "X-API-Key: $API_KEY" in output
    assert '"accepted":1' in sample.replace(" ", ""), f"pasting the export line makes the samples work:\n{sample}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"JWT_SECRET": "too-short-secret"}, "JWT_SECRET: must be at least 32 bytes"),
        ({"API_KEY": None}, "API_KEY: is required"),
        (
            {"DATABASE_URL": "postgresql://nopassword@127.0.0.1:5432/events"},
            "DATABASE_URL: must carry database credentials",
        ),
    ],
)
def test_service_refuses_to_start_without_its_secrets(
    service_env: dict[str, str], change: dict[str, str | None], expected: str
) -> None:
    env = {**os.environ, **service_env}
    for name, value in change.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    for command in (
        [sys.executable, "-m", "service", "--check-config"],
        [sys.executable, "-m", "service", "--bind", "127.0.0.1:0"],
    ):
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, command
        assert expected in result.stderr, command
        if change.get("JWT_SECRET"):
            assert "too-short-secret" not in result.stderr + result.stdout
