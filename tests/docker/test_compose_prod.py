"""docker-compose.prod.yml brought up for real (RB-OPS-COMPOSE), as the runbook says:

    docker compose -f docker-compose.prod.yml up -d --build

with chaos/images/compose.ci.yml on top where no registry is reachable (the locally built images; nothing else
changes). The stack must come up healthy with the migration applied, pass the runbook's runtime health check,
publish only on 127.0.0.1, and refuse to start without each required secret. `docker compose down -v`
removes everything afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.servers import free_port
from chaos.service_process import head_revision

REPO = Path(__file__).resolve().parents[2]
FILES = ["-f", "docker-compose.prod.yml", "-f", "chaos/images/compose.ci.yml"]
SECRETS = ("POSTGRES_PASSWORD", "API_KEY", "JWT_SECRET")
UP_TIMEOUT_S = 900
HEALTHY_TIMEOUT_S = 180
SERVICES = ("postgres", "redis", "migrate", "api")


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin is installed, else Debian's `docker-compose` (v1)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed (scripts/prepare_docker.py installs it)")


@dataclass
class Deployment:
    project: str
    secrets: dict[str, str]
    api_port: int
    command: list[str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, *, without: str | None = None) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name not in (*SECRETS, "API_PORT", "API_IMAGE")}
        env.update(self.secrets)
        env["API_PORT"] = str(self.api_port)
        if without:
            env.pop(without)
        return env

    def compose(self, *args: str, without: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, "-p", self.project, *FILES, *args],
            cwd=REPO,
            env=self.env(without=without),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def containers(self) -> dict[str, dict[str, Any]]:
        """service name → `docker inspect` of its container, for every container of the project."""
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if not ids:
            return {}
        inspected = json.loads(
            subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
        )
        return {item["Config"]["Labels"]["com.docker.compose.service"]: item for item in inspected}

    def leftovers(self) -> list[str]:
        found = []
        for kind in ("container", "network", "volume"):
            listing = ["docker", kind, "ls", "-q"] + (["-a"] if kind == "container" else [])
            result = subprocess.run(
                [*listing, "--filter", f"label=com.docker.compose.project={self.project}"],
                capture_output=True,
                text=True,
                check=True,
            )
            found += [f"{kind} {name}" for name in result.stdout.split()]
        return found


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment(
        project=f"rbcompose{uuid.uuid4().hex[:8]}",
        secrets={
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "API_KEY": secrets.token_urlsafe(24),
            "JWT_SECRET": secrets.token_urlsafe(48),
        },
        api_port=free_port(),
        command=compose_command(),
    )


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_to_start_without_each_secret(deployment: Deployment, missing: str) -> None:
    for command in (("config", "--quiet"), ("up", "-d", "--build")):
        result = deployment.compose(*command, without=missing)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert f"{missing} is required" in output
        for other in SECRETS:
            if other != missing:
                assert deployment.secrets[other] not in output, "compose's error must not show the other secrets"
    assert deployment.leftovers() == [], "nothing was created"


@pytest.fixture(scope="module")
def deployed(deployment: Deployment) -> Iterator[Deployment]:
    started = time.monotonic()
    try:
        up = deployment.compose("up", "-d", "--build", timeout=UP_TIMEOUT_S)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while True:
            containers = deployment.containers()
            health = containers.get("api", {}).get("State", {}).get("Health", {}).get("Status")
            if health == "healthy":
                break
            assert health != "unhealthy", deployment.compose("logs", "--no-color", "api").stdout[-3000:]
            assert time.monotonic() < deadline, deployment.compose("ps").stdout
            time.sleep(1)
        print(f"compose: {deployment.project} up and healthy in {time.monotonic() - started:.1f}s", file=sys.stderr)
        yield deployment
    finally:
        down = deployment.compose("down", "-v", "--remove-orphans", timeout=180)
        print(f"compose down -v: exit {down.returncode}", file=sys.stderr)
    assert down.returncode == 0, down.stderr[-3000:]
    assert deployment.leftovers() == []


def test_every_service_is_healthy_and_the_migration_ran_once_to_success(deployed: Deployment) -> None:
    containers = deployed.containers()
    assert set(containers) == set(SERVICES)
    for name in ("postgres", "redis", "api"):
        assert containers[name]["State"]["Status"] == "running", name
        assert containers[name]["State"]["Health"]["Status"] == "healthy", name
    migrate = containers["migrate"]["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0)
    assert containers["api"]["Config"]["Image"] == containers["migrate"]["Config"]["Image"]

    head = head_revision()
    stored = deployed.compose(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-U",
        "events",
        "-d",
        "events",
        "-tAc",
        "SELECT version_num FROM alembic_version",
    )
    assert stored.stdout.strip() == head, stored.stderr
    ready = httpx.get(f"{deployed.base_url}/health/ready", timeout=5).json()
    assert ready["status"] == "ready"
    assert ready["schema_revision"] == head


def test_the_runbook_health_check_passes_against_the_deployment(deployed: Deployment) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_runtime_health.py"), "--base-url", deployed.base_url, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "API_KEY": deployed.secrets["API_KEY"]},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {check["name"]: check["status"] for check in report["checks"]} == {
        "live": "ok",
        "ready": "ok",
        "database": "ok",
        "redis": "ok",
        "auth": "ok",
        "api": "ok",
    }


def test_events_round_trip_through_the_deployment(deployed: Deployment) -> None:
    headers = {"X-API-Key": deployed.secrets["API_KEY"]}
    event = {"source": "compose-ci", "type": "deploy.checked", "occurred_at": "2026-11-26T10:00:00Z"}
    with httpx.Client(base_url=deployed.base_url, headers=headers, timeout=10) as client:
        created = client.post("/api/v1/events", json=event)
        assert created.status_code == 201, created.text
        event_id = created.json()["ids"][0]
        assert client.get(f"/api/v1/events/{event_id}").json()["source"] == "compose-ci"
        assert client.get("/api/v1/events", headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401


def test_only_the_api_is_published_and_only_on_loopback(deployed: Deployment) -> None:
    published = {}
    for name, container in deployed.containers().items():
        bindings = container["HostConfig"]["PortBindings"] or {}
        published[name] = [binding for entries in bindings.values() for binding in entries or ()]
    assert {name for name, bindings in published.items() if bindings} == {"api"}
    assert published["api"] == [{"HostIp": "127.0.0.1", "HostPort": str(deployed.api_port)}]


def test_the_api_container_is_non_root_read_only_and_without_capabilities(deployed: Deployment) -> None:
    api = deployed.containers()["api"]
    assert api["Config"]["User"] == "10001:10001"
    assert api["HostConfig"]["ReadonlyRootfs"] is True
    assert api["HostConfig"]["CapDrop"] == ["ALL"]
    assert deployed.compose("exec", "-T", "api", "id", "-u").stdout.strip() == "10001"


def test_no_secret_reaches_any_container_log(deployed: Deployment) -> None:
    httpx.get(f"{deployed.base_url}/api/v1/events", headers={"X-API-Key": deployed.secrets["API_KEY"]}, timeout=5)
    logs = deployed.compose("logs", "--no-color")
    assert logs.returncode == 0
    text = logs.stdout + logs.stderr
    assert '"logger":"access"' in text  # the API's own log lines are there
    for name, value in deployed.secrets.items():
        assert value not in text, name
