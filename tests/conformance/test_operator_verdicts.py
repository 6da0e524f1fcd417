"""RB-OPS-VERDICTS: the operator commands' verdicts and exit codes tell the truth about what the service does.

Each command runs as a subprocess, as an operator runs it, against a real service process on real PostgreSQL
and Redis servers, which the tests break for real (the database stopped, a wrong key, nothing listening)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaos.lifecycle import free_port
from chaos.stack.migrations import REPO_ROOT
from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess
from conformance.verdicts import Exit
from tests.own_servers import Servers

pytestmark = pytest.mark.integration

API_KEY = f"verdict-key-{secrets.token_hex(16)}"
HTTP_CHECKS = ("check_runtime_health.py", "check_payload_guards.py")
SECRET_ENV = ("API_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL")


@pytest.fixture(scope="module")
def service(postgres: PostgresServer, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    env = {
        "DATABASE_URL": postgres.url("events"),
        "REDIS_URL": redis_server.url(),
        "API_KEY": API_KEY,
        "JWT_SECRET": secrets.token_urlsafe(48),
    }
    with ServiceProcess(env, workers=1) as running:
        yield running


def run(script: str, *args: str, api_key: str | None = API_KEY, **env: str) -> subprocess.CompletedProcess[str]:
    """`python scripts/<script> …` with only the secrets given here in its environment."""
    clean = {name: value for name, value in os.environ.items() if name not in SECRET_ENV}
    if api_key is not None:
        clean["API_KEY"] = api_key
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=REPO_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verdict_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return lines[-1]


def scopes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in json.loads(result.stdout)["checks"]}


def wait_for_database_outage(base_url: str, within_s: float = 20.0) -> None:
    """Until the service itself shows the outage (readiness caches results for HEALTH_CACHE_S, and the pool
    finds its connections dead only when it uses them): readiness 503 naming the database, the API 503."""
    deadline = time.monotonic() + within_s
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while True:
            ready = client.get("/health/ready")
            api = client.get("/api/v1/events", params={"limit": 1}, headers={"X-API-Key": API_KEY})
            if ready.status_code == 503 and "database" in ready.json()["failed_checks"] and api.status_code == 503:
                return
            assert time.monotonic() < deadline, f"no outage seen: ready {ready.status_code}, api {api.status_code}"
            time.sleep(0.1)


# -- a healthy service ----------------------------------------------------------------------------------------------
def test_a_healthy_service_is_healthy_and_its_guards_pass(service: ServiceProcess) -> None:
    health = run("check_runtime_health.py", "--base-url", service.base_url)
    assert health.returncode == Exit.OK, health.stdout + health.stderr
    assert verdict_line(health) == "HEALTHY"
    report = json.loads(run("check_runtime_health.py", "--base-url", service.base_url, "--json").stdout)
    assert (report["verdict"], report["healthy"], report["exit_code"], report["failing"]) == ("HEALTHY", True, 0, [])
    guards = run("check_payload_guards.py", "--base-url", service.base_url)
    assert guards.returncode == Exit.OK, guards.stdout + guards.stderr
    assert verdict_line(guards).startswith("passed")


# -- a database outage: DEGRADED when allowed, UNHEALTHY otherwise, never HEALTHY -----------------------------------
def test_a_database_outage_is_degraded_when_allowed_and_unhealthy_otherwise(
    service: ServiceProcess, healthy_servers: Servers
) -> None:
    postgres, _ = healthy_servers
    postgres.stop()
    wait_for_database_outage(service.base_url)

    lenient = run("check_runtime_health.py", "--base-url", service.base_url, "--allow-ready-degraded")
    assert lenient.returncode == Exit.OK, lenient.stdout + lenient.stderr
    line = verdict_line(lenient)
    assert line.startswith("DEGRADED"), lenient.stdout
    for scope in ("ready", "database", "api"):
        assert scope in line.split(":", 1)[1], f"the verdict names {scope}: {line}"
    lenient_json = run("check_runtime_health.py", "--base-url", service.base_url, "--allow-ready-degraded", "--json")
    report = json.loads(lenient_json.stdout)
    assert report["verdict"] == "DEGRADED"
    assert report["healthy"] is False
    assert {"ready", "database", "api"} <= set(report["failing"])
    assert scopes(lenient_json)["api"] == scopes(lenient_json)["database"] == "degraded"
    assert scopes(lenient_json)["auth"] == "ok", "the key got past authentication (the 503 came from behind it)"

    strict = run("check_runtime_health.py", "--base-url", service.base_url)
    assert strict.returncode == Exit.FAILED, strict.stdout + strict.stderr
    assert verdict_line(strict).startswith("UNHEALTHY")
    assert "database" in verdict_line(strict)
    assert "api" in verdict_line(strict)
    assert "HEALTHY" not in strict.stdout.replace("UNHEALTHY", "")


# -- credentials ---------------------------------------------------------------------------------------------------
def test_a_wrong_key_is_unhealthy_with_auth_failing(service: ServiceProcess) -> None:
    result = run("check_runtime_health.py", "--base-url", service.base_url, api_key="not-the-key")
    assert result.returncode == Exit.FAILED, result.stdout + result.stderr
    assert verdict_line(result).startswith("UNHEALTHY")
    auth_line = next(line for line in result.stdout.splitlines() if " auth " in line)
    assert auth_line.startswith("FAIL"), auth_line
    assert "REFUSED" in auth_line, auth_line
    as_json = run("check_runtime_health.py", "--base-url", service.base_url, "--json", api_key="not-the-key")
    assert scopes(as_json)["auth"] == scopes(as_json)["api"] == "fail"
    assert "not-the-key" not in result.stdout + result.stderr + as_json.stdout


def test_a_wrong_key_means_the_batch_guard_could_not_be_checked(service: ServiceProcess) -> None:
    result = run("check_payload_guards.py", "--base-url", service.base_url, "--json", api_key="not-the-key")
    assert result.returncode == Exit.COULD_NOT_RUN, result.stdout + result.stderr
    report = json.loads(result.stdout)
    outcomes = {r["guard"]: r["outcome"] for r in report["results"]}
    assert outcomes == {"body": "passed", "batch": "could not run"}, report
    assert "refused" in report["results"][1]["detail"]
    assert report["verdict"] == "could not run"
    assert report["guards_hold"] is False


@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_no_key_is_a_usage_error_for_both_http_checks(service: ServiceProcess, script: str) -> None:
    result = run(script, "--base-url", service.base_url, api_key=None)
    assert result.returncode == Exit.USAGE, result.stdout + result.stderr
    assert "API_KEY" in result.stderr
    assert "--api-key-file" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


# -- where to look -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", HTTP_CHECKS)
@pytest.mark.parametrize("shape", ["127.0.0.1:{port}", "localhost:{port}", "ftp://127.0.0.1:{port}", "http://"])
def test_a_url_without_an_http_scheme_and_host_is_a_usage_error(
    service: ServiceProcess, script: str, shape: str
) -> None:
    url = shape.format(port=service.port)
    result = run(script, "--base-url", url)
    assert result.returncode == Exit.USAGE, result.stdout + result.stderr
    assert "--base-url" in result.stderr
    assert "http://" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_an_unreachable_target_could_not_be_checked_in_one_line(script: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(script, "--base-url", url, "--timeout", "2")
    assert result.returncode == Exit.COULD_NOT_RUN, result.stdout + result.stderr
    assert result.stderr == "", "no traceback, no second channel"
    [line] = result.stdout.splitlines()
    assert line.lower().startswith("could not run"), line
    assert url in line, line
    assert "cannot connect" in line, line
    as_json = json.loads(run(script, "--base-url", url, "--timeout", "2", "--json").stdout)
    assert as_json["verdict"].lower() == "could not run"
    assert as_json["exit_code"] == Exit.COULD_NOT_RUN


@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_help_shows_the_shared_exit_code_table(script: str) -> None:
    result = run(script, "--help")
    assert result.returncode == 0
    for code, words in ((0, "HEALTHY / passed"), (1, "UNHEALTHY / failed"), (2, "usage"), (3, "could not run")):
        assert f"  {code}  {words}" in result.stdout, words
    assert "Exit codes" in result.stdout, "it points at README.md's table"


# -- the rollback check against a database it cannot use ----------------------------------------------------------
@pytest.mark.parametrize("shape", ["nothing listens", "a wrong password", "not PostgreSQL"])
@pytest.mark.parametrize("run_it", [False, True], ids=["check", "--run"])
def test_rollback_check_against_an_unusable_database_could_not_run(
    postgres: PostgresServer, redis_server: RedisServer, shape: str, run_it: bool
) -> None:
    password = f"pw{secrets.token_hex(8)}"
    port = {"nothing listens": free_port(), "a wrong password": postgres.port, "not PostgreSQL": redis_server.port}
    url = f"postgresql://postgres:{password}@127.0.0.1:{port[shape]}/events"
    result = run("check_migration_rollback.py", *(["--run"] if run_it else []), api_key=None, DATABASE_URL=url)
    assert result.returncode == Exit.COULD_NOT_RUN, result.stdout + result.stderr
    assert result.returncode != 1, "1 means refused as unsafe"
    [line] = result.stderr.splitlines()
    assert line.startswith("could not run: cannot read the database's revision"), line
    if shape == "a wrong password":
        assert "refuses the credentials" in line
    assert password not in result.stdout + result.stderr
    assert postgres.password not in line
    assert "Traceback" not in result.stderr


def test_rollback_help_documents_could_not_run_in_the_shared_table() -> None:
    result = run("check_migration_rollback.py", "--help", api_key=None)
    assert result.returncode == 0
    assert "  3  could not run" in result.stdout
    assert "  1  failed: refused as unsafe" in result.stdout
    assert "  6  the downgrade itself failed" in result.stdout
    assert "the database cannot be read" not in result.stdout, "no longer a usage error (2)"


# -- the conformance check can fail: a health check that says HEALTHY during an outage ---------------------------
# The defect this issue found: `--allow-ready-degraded` turned a database outage into HEALTHY, exit 0.
LYING_HEALTH_CHECK = '''\
"""scripts/check_runtime_health.py, except that DEGRADED is reported as HEALTHY (the defect RB-OPS-VERDICTS
forbids). Everything else is the real command's output."""
import json, subprocess, sys

real = subprocess.run([sys.executable, {real!r}, *sys.argv[1:]], capture_output=True, text=True)
out = real.stdout
if "--json" in sys.argv:
    document = json.loads(out)
    if document.get("verdict") == "DEGRADED":
        document.update(verdict="HEALTHY", healthy=True, failing=[])
    out = json.dumps(document)
else:
    lines = out.splitlines()
    if lines and lines[-1].startswith("DEGRADED"):
        lines[-1] = "HEALTHY"
    out = "\\n".join(lines)
print(out)
sys.stderr.write(real.stderr)
sys.exit(real.returncode)
'''


def test_the_conformance_check_fails_against_a_health_check_that_calls_an_outage_healthy(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    real = REPO_ROOT / "scripts" / "check_runtime_health.py"
    (scripts / "check_runtime_health.py").write_text(LYING_HEALTH_CHECK.format(real=str(real)))
    (scripts / "check_payload_guards.py").symlink_to(REPO_ROOT / "scripts" / "check_payload_guards.py")
    # The whole checks directory (the registry wants every requirement's tests collected), then only this one.
    only = ["--only-requirement", "RB-OPS-VERDICTS", "-k", "test_a_database_outage_is_degraded_when_allowed"]
    plugins = ["-p", "tests.conformance.scripts_override", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance/checks", *only, *plugins],
        cwd=REPO_ROOT,
        env={**os.environ, "CONFORMANCE_SCRIPTS_DIR": str(scripts)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 failed" in result.stdout, result.stdout[-3000:]
    assert "a database outage with --allow-ready-degraded" in result.stdout, "it fails on the verdict"
