"""`python -m chaos deployment up|down` for real: docker-compose.prod.yml + docker-compose.chaos.yml on the
Docker engine, two replicas, one deployment for the whole module (its own compose project and report dir).

What a drill relies on is checked against the running containers: the target file and its env file, the API
through the balancer, the fault proxy between the replicas and their dependencies (a disabled `postgres` proxy
turns every replica not-ready and out of the balancer's rotation), Prometheus scraping each replica by
address, the balancer's stats CSV, the durability URL; then `down` leaves nothing of the project, and a
SIGTERM during `up` tears down what it had started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from chaos.deployment import ComposeProject, Deployment, DeploymentError, deployment_down, deployment_up
from chaos.deployment.compose import files_for, network_ips
from chaos.deployment.lifecycle import balancer_servers, read_env_file
from conformance.verdicts import Exit

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
REPLICAS = 2
ROTATION_TIMEOUT_S = 20.0  # checks every second, fall 1 / rise 2: seconds, not tens of them
EVENT = {"source": "deployment-test", "type": "order.placed", "occurred_at": "2026-11-26T10:00:00Z"}


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = ROTATION_TIMEOUT_S) -> float:
    """Seconds until `condition()` held; fails the test after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s:.0f}s: {what}"
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deployment")


@pytest.fixture(scope="module")
def deployment(report_dir: Path) -> Iterator[Deployment]:
    project = f"rbdeploytest{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    deployed = deployment_up(replicas=REPLICAS, project=project, report_dir=report_dir, progress=_progress)
    _progress(f"deployment_up: {time.monotonic() - started:.1f}s (its own figure: {deployed.up_s:.1f}s)")
    try:
        yield deployed
    finally:
        deployment_down(project, report_dir, progress=_progress)  # idempotent: test_down ran it already


@pytest.fixture(scope="module")
def compose(deployment: Deployment) -> ComposeProject:
    """The project, for inspecting it (no secrets needed: nothing here reads the compose files)."""
    return ComposeProject(deployment.project, deployment.files)


@pytest.fixture(scope="module")
def target(deployment: Deployment) -> dict[str, Any]:
    return tomllib.loads(deployment.target_file.read_text())


@pytest.fixture(scope="module")
def env(deployment: Deployment) -> dict[str, str]:
    return read_env_file(deployment.env_file)


@pytest.fixture(scope="module")
def replicas(compose: ComposeProject) -> list[dict[str, Any]]:
    running = compose.inspect("api", all=False)
    assert len(running) == REPLICAS
    return running


def ips(replicas: list[dict[str, Any]], network: str) -> set[str]:
    return {network_ips(replica)[network] for replica in replicas}


def test_the_target_file_names_the_deployment(
    deployment: Deployment, target: dict[str, Any], replicas: list[dict[str, Any]]
) -> None:
    project = deployment.project
    assert target["name"] == "local-deployment"
    assert target["kind"] == "deployment"
    assert f"project {project}, {REPLICAS} replicas" in target["description"]
    for key in ("base_url", "prometheus_url"):
        assert target[key].startswith("http://127.0.0.1:"), key
    assert target["credentials"] == {
        "api_key": "RB_TARGET_API_KEY",
        "database_url": "RB_TARGET_DATABASE_URL",
        "jwt_secret": "RB_TARGET_JWT_SECRET",
    }
    toxiproxy = target["drivers"]["toxiproxy"]
    assert toxiproxy["api_url"].startswith("http://127.0.0.1:")
    assert toxiproxy["proxies"] == {"postgres": "postgres", "redis": "redis"}
    docker = target["drivers"]["docker"]
    assert docker["project"] == project
    assert docker["service"] == "api"
    assert docker["dependencies"] == {"postgres": "postgres", "redis": "redis"}
    assert docker["partition_network"] == f"{project}_backend"
    assert docker["probe_network"] == f"{project}_chaos"
    assert docker["replica_port"] == 8000
    assert docker["balancer_stats_url"].startswith("http://127.0.0.1:")
    assert docker["balancer_stats_url"].endswith("/stats;csv")
    assert docker["balancer_backend"] == "replicas"
    # the image the replicas run, as they were created from it
    assert {replica["Config"]["Image"] for replica in replicas} == {docker["image"]}
    for network in (docker["partition_network"], docker["probe_network"]):
        assert all(network in network_ips(replica) for replica in replicas), network


def test_the_env_file_is_private_and_holds_what_the_target_names(
    deployment: Deployment, target: dict[str, Any], env: dict[str, str]
) -> None:
    assert stat.S_IMODE(deployment.env_file.stat().st_mode) == 0o600
    for variable in target["credentials"].values():
        assert env.get(variable), variable
    for secret in ("POSTGRES_PASSWORD", "API_KEY", "JWT_SECRET"):
        assert env.get(secret), secret
    assert env["RB_TARGET_API_KEY"] == env["API_KEY"]
    assert env["RB_TARGET_JWT_SECRET"] == env["JWT_SECRET"]
    text = deployment.target_file.read_text()
    for value in (env["POSTGRES_PASSWORD"], env["API_KEY"], env["JWT_SECRET"]):
        assert value not in text, "a secret value in the target file"
    # the env file is what a shell sources: `set -a; . FILE; set +a`
    shell = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; set +a; printf %s "$RB_TARGET_DATABASE_URL"', "sh", str(deployment.env_file)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert shell.stdout == env["RB_TARGET_DATABASE_URL"]


def test_the_api_answers_through_the_balancer(deployment: Deployment, env: dict[str, str]) -> None:
    with httpx.Client(base_url=deployment.base_url, timeout=10) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert client.get("/api/v1/events").status_code == 401  # the deployment's API key is required
        created = client.post("/api/v1/events", json=EVENT, headers={"X-API-Key": env["RB_TARGET_API_KEY"]})
        assert created.status_code == 201, created.text


def test_the_balancer_has_every_replica_up(deployment: Deployment, replicas: list[dict[str, Any]]) -> None:
    with httpx.Client(timeout=5) as client:
        servers = balancer_servers(client, deployment.stats_url)
    up = {row["addr"].rpartition(":")[0]: row["svname"] for row in servers if row["status"] == "UP"}
    assert set(up) == ips(replicas, f"{deployment.project}_edge")
    assert all(name.startswith("api") for name in up.values())
    # the other slots wait for DNS to name a replica
    assert {row["status"] for row in servers if row["svname"] not in up.values()} <= {"MAINT (resolution)"}


def test_prometheus_scrapes_each_replica_by_address(deployment: Deployment, replicas: list[dict[str, Any]]) -> None:
    response = httpx.get(
        f"{deployment.prometheus_url}/api/v1/query", params={"query": 'up{job="events-api"}'}, timeout=5
    )
    response.raise_for_status()
    results = response.json()["data"]["result"]
    scraped = {result["metric"]["instance"]: result["value"][1] for result in results}
    expected = {f"{ip}:8000" for ip in ips(replicas, f"{deployment.project}_chaos")}
    assert scraped == dict.fromkeys(expected, "1")
    rules = httpx.get(f"{deployment.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert any(rule["type"] == "alerting" for group in rules for rule in group["rules"]), "the shipped alert rules"


def replica_readiness(deployment: Deployment, replicas: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Each replica's own /health/ready, at its address on the probe network."""
    answers = []
    for ip in sorted(ips(replicas, deployment.probe_network)):
        response = httpx.get(f"http://{ip}:8000/health/ready", timeout=5)
        answers.append((response.status_code, response.json()))
    return answers


def test_the_replicas_reach_postgres_and_redis_only_through_the_fault_proxy(
    deployment: Deployment, replicas: list[dict[str, Any]], compose: ComposeProject
) -> None:
    proxies = httpx.get(f"{deployment.fault_proxy_url}/proxies", timeout=5).json()
    assert {name: proxy["upstream"] for name, proxy in proxies.items()} == {
        "postgres": "postgres:5432",
        "redis": "redis:6379",
    }
    # What the replicas were configured with: the fault proxy's addresses, for both dependencies.
    (faultproxy,) = compose.inspect("faultproxy", all=False)
    proxy_ips = set(network_ips(faultproxy).values())
    for replica in replicas:
        assert "REDIS_URL=redis://faultproxy:16379/0" in replica["Config"]["Env"]
    url_file = subprocess.run(
        ["docker", "exec", replicas[0]["Id"], "cat", "/var/lib/runbook/credentials/api_database_url"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (httpx.URL(url_file).host, httpx.URL(url_file).port) == ("faultproxy", 15432)

    # Disabling the `postgres` proxy turns every replica degraded, and the balancer takes them all out.
    def rotation() -> set[str]:
        with httpx.Client(timeout=5) as client:
            return {row["status"] for row in balancer_servers(client, deployment.stats_url) if row["addr"]}

    set_enabled = f"{deployment.fault_proxy_url}/proxies/postgres"
    try:
        assert httpx.post(set_enabled, json={"enabled": False}, timeout=5).json()["enabled"] is False
        wait_for(lambda: rotation() == {"DOWN"}, "every replica out of rotation with the postgres proxy disabled")
        for status, body in replica_readiness(deployment, replicas):
            assert status == 503
            assert body["status"] == "degraded"
            assert "database" in body["failed_checks"]
            assert body["checks"]["redis"]["status"] == "up"
        balancer = httpx.get(f"{deployment.base_url}/health/ready", timeout=5)
        assert balancer.status_code == 503
        assert balancer.json()["code"] == "NO_READY_REPLICA"
    finally:
        httpx.post(set_enabled, json={"enabled": True}, timeout=5).raise_for_status()
    wait_for(lambda: rotation() == {"UP"}, "every replica back in rotation with the proxy enabled")
    assert [status for status, _ in replica_readiness(deployment, replicas)] == [200] * REPLICAS

    # And the API role's connections do come from the fault proxy (from either of its networks: it shares two
    # with postgres).
    async def clients() -> set[str]:
        connection = await asyncpg.connect(read_env_file(deployment.env_file)["RB_TARGET_DATABASE_URL"], timeout=10)
        try:
            rows = await connection.fetch(
                "SELECT DISTINCT host(client_addr) AS address FROM pg_stat_activity WHERE usename = 'events_api'"
            )
        finally:
            await connection.close()
        return {row["address"] for row in rows}

    httpx.get(f"{deployment.base_url}/health/ready", timeout=5)  # so the pools hold a connection
    seen = asyncio.run(clients())
    assert seen, "no connection of the API role"
    assert seen <= proxy_ips


def test_the_durability_url_sees_what_the_api_acknowledged(deployment: Deployment, env: dict[str, str]) -> None:
    created = httpx.post(
        f"{deployment.base_url}/api/v1/events",
        json={**EVENT, "type": "durability.check"},
        headers={"X-API-Key": env["RB_TARGET_API_KEY"]},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    (event_id,) = created.json()["ids"]

    async def stored() -> int:
        connection = await asyncpg.connect(env["RB_TARGET_DATABASE_URL"], timeout=10)
        try:
            count: int = await connection.fetchval("SELECT count(*) FROM events WHERE id::text = $1", str(event_id))
            return count
        finally:
            await connection.close()

    assert asyncio.run(stored()) == 1


def test_a_second_up_of_the_same_project_is_refused(deployment: Deployment, report_dir: Path) -> None:
    before = deployment.env_file.read_bytes()
    with pytest.raises(DeploymentError, match="already has"):
        deployment_up(project=deployment.project, report_dir=report_dir, progress=_progress)
    assert deployment.env_file.read_bytes() == before, "the running deployment's secrets are kept"


def test_down_removes_the_project_and_its_files(deployment: Deployment, compose: ComposeProject) -> None:
    started = time.monotonic()
    deployment_down(deployment.project, deployment.env_file.parent, progress=_progress)
    _progress(f"deployment_down: {time.monotonic() - started:.1f}s")
    assert compose.resources() == []
    assert not deployment.target_file.exists()
    assert not deployment.env_file.exists()
    deployment_down(deployment.project, deployment.env_file.parent, progress=_progress)  # nothing left: fine


def test_sigterm_during_up_tears_down_what_was_started(tmp_path: Path) -> None:
    project = f"rbdeploysig{uuid.uuid4().hex[:6]}"
    compose = ComposeProject(project, files_for(False))
    command = [sys.executable, "-m", "chaos", "deployment", "up", "--replicas", "1", "--project", project]
    process = subprocess.Popen(
        [*command, "--report-dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: bool(compose.container_ids()) or process.poll() is not None,
            "the first container of the project",
            timeout_s=300,  # images already built by the module's deployment: seconds
        )
        assert process.poll() is None, f"up ended before it was interrupted:\n{process.communicate()[0]}"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
            deployment_down(project, tmp_path, progress=_progress)
    assert process.returncode == Exit.ABORTED, output
    assert "tearing down" in output
    assert "TEARDOWN FAILED" not in output
    assert compose.resources() == []
    assert not (tmp_path / "target.env").exists()
