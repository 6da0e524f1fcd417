"""docker-compose.prod.yml brought up for real (RB-OPS-COMPOSE), as the runbook says:

    docker compose -f docker-compose.prod.yml up -d --build

with chaos/stack/images/compose.ci.yml on top where no registry is reachable (the locally built images; nothing else
changes), and nothing but the three required secrets in the environment. The stack must come up healthy with
the migration applied, pass the runbook's runtime health check, publish only on 127.0.0.1, and refuse to start
without each required secret. The API must connect as its own least-privileged database role and never see the
owner's password; every container must run without capabilities, with no-new-privileges, a read-only root
filesystem and memory and process limits. `docker compose down -v` removes everything afterwards.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.lifecycle import free_port
from chaos.stack.migrations import head_revision
from migrations import api_role

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
FILES = ["-f", "docker-compose.prod.yml", "-f", "chaos/stack/images/compose.ci.yml"]
SECRETS = ("POSTGRES_PASSWORD", "API_KEY", "JWT_SECRET")
UP_TIMEOUT_S = 900
HEALTHY_TIMEOUT_S = 180
SERVICES = ("postgres", "redis", "migrate", "api", "lb")
REPLICAS = 2  # the file's default (API_REPLICAS)
EDGE_SUBNET = "10.250.250.0/26"
CONTAINER_NUMBER = "com.docker.compose.container-number"  # a replica's index within its service
ROTATION_TIMEOUT_S = 30.0  # the balancer checks every second; this bounds every wait on its rotation
URL_FILE = "/var/lib/runbook/credentials/api_database_url"
# Every variable the compose files read: none but the secrets (and API_PORT) may come from this environment.
COMPOSE_VARIABLES = {name for path in FILES[1::2] for name in re.findall(r"\$\{(\w+)", (REPO / path).read_text())}


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
        env = {name: value for name, value in os.environ.items() if name not in COMPOSE_VARIABLES}
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
        """service name → `docker inspect` of its (first) container, for every service of the project."""
        return {name: replicas[0] for name, replicas in self.replicas().items()}

    def replicas(self) -> dict[str, list[dict[str, Any]]]:
        """service name → `docker inspect` of each of its containers, in replica order."""
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
        by_service: dict[str, list[dict[str, Any]]] = {}
        for item in sorted(
            inspected, key=lambda item: int(item["Config"]["Labels"]["com.docker.compose.container-number"])
        ):
            by_service.setdefault(item["Config"]["Labels"]["com.docker.compose.service"], []).append(item)
        return by_service

    def routed(self) -> bool:
        """Whether the balancer answers /health/ready with 200 (some replica is in rotation)."""
        try:
            return httpx.get(f"{self.base_url}/health/ready", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def psql(self, query: str) -> list[str]:
        """Rows of `query` run by the schema owner from inside the postgres container (socket, trust)."""
        result = self.compose("exec", "-T", "postgres", "psql", "-U", "events", "-d", "events", "-tAc", query)
        assert result.returncode == 0, result.stderr
        return [line for line in result.stdout.splitlines() if line]

    def api_database_url(self) -> str:
        result = self.compose("exec", "-T", "api", "cat", URL_FILE)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

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
            replicas = deployment.replicas()
            health = [
                c["State"].get("Health", {}).get("Status") for name in ("api", "lb") for c in replicas.get(name, [])
            ]
            if len(health) == REPLICAS + 1 and set(health) == {"healthy"} and deployment.routed():
                break
            assert "unhealthy" not in health, deployment.compose("logs", "--no-color", "api", "lb").stdout[-3000:]
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
    replicas = deployed.replicas()
    assert {name: len(found) for name, found in replicas.items()} == {name: 1 for name in SERVICES} | {"api": REPLICAS}
    for name in ("postgres", "redis", "api", "lb"):
        for container in replicas[name]:
            assert container["State"]["Status"] == "running", name
            assert container["State"]["Health"]["Status"] == "healthy", name
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
        "schema": "ok",  # every readiness check is a scope of its own
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


def test_only_the_balancer_is_published_and_only_on_loopback(deployed: Deployment) -> None:
    published: dict[str, list[Any]] = {}
    for name, containers in deployed.replicas().items():
        for container in containers:
            bindings = container["HostConfig"]["PortBindings"] or {}
            published.setdefault(name, []).extend(binding for entries in bindings.values() for binding in entries or ())
    assert {name for name, bindings in published.items() if bindings} == {"lb"}
    assert published["lb"] == [{"HostIp": "127.0.0.1", "HostPort": str(deployed.api_port)}]


def test_the_api_container_is_non_root_read_only_and_without_capabilities(deployed: Deployment) -> None:
    api = deployed.containers()["api"]
    assert api["Config"]["User"] == "10001:10001"
    assert api["HostConfig"]["ReadonlyRootfs"] is True
    assert api["HostConfig"]["CapDrop"] == ["ALL"]
    assert deployed.compose("exec", "-T", "api", "id", "-u").stdout.strip() == "10001"


@pytest.mark.parametrize("name", SERVICES)
def test_every_container_is_locked_down_and_limited(deployed: Deployment, name: str) -> None:
    container = deployed.containers()[name]
    host = container["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert not host["Privileged"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert host["Memory"] > 0, "no memory limit"
    assert host["MemorySwap"] == host["Memory"], "swap beyond the memory limit"
    assert (host["PidsLimit"] or 0) > 0, "no process limit"
    assert container["Config"]["User"] not in {"", "root", "0", "0:0"}
    if name == "migrate":
        return  # exited; the rest looks inside the running container
    status = deployed.compose("exec", "-T", name, "cat", "/proc/1/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] != "0", "the main process runs as root"
    for capabilities in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[capabilities], 16) == 0, f"{capabilities}: {fields[capabilities]}"
    assert fields["NoNewPrivs"].strip() == "1"
    touched = deployed.compose("exec", "-T", name, "touch", "/rootfs-is-writable")
    assert touched.returncode != 0
    assert "Read-only file system" in touched.stderr, touched.stderr


def test_the_api_connects_as_its_own_role_and_never_sees_the_owner_password(deployed: Deployment) -> None:
    containers = deployed.containers()
    api_env = dict(item.split("=", 1) for item in containers["api"]["Config"]["Env"])
    assert "POSTGRES_PASSWORD" not in api_env
    assert "DATABASE_URL" not in api_env
    assert not any(deployed.secrets["POSTGRES_PASSWORD"] in value for value in api_env.values())
    assert api_env["DATABASE_URL_FILE"] == URL_FILE
    # the credentials volume: written by migrate, read-only in the API, the file only uid 10001 reads
    mounts = {name: {m["Destination"]: m for m in containers[name]["Mounts"]} for name in ("migrate", "api")}
    directory = URL_FILE.rpartition("/")[0]
    assert mounts["migrate"][directory]["RW"] is True
    assert mounts["api"][directory]["RW"] is False
    assert mounts["api"][directory]["Name"] == mounts["migrate"][directory]["Name"]
    listing = deployed.compose("exec", "-T", "api", "stat", "-c", "%a %u %g", URL_FILE)
    assert listing.stdout.strip() == "400 10001 10001", listing.stderr
    url = httpx.URL(deployed.api_database_url())
    assert url.username == api_role.DEFAULT_ROLE
    assert url.password != deployed.secrets["POSTGRES_PASSWORD"]

    httpx.get(f"{deployed.base_url}/health/ready", timeout=5)
    users = deployed.psql(
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    assert users == [api_role.DEFAULT_ROLE], "the API's connections are the API role's, not the owner's"


def test_the_api_role_has_exactly_its_grants(deployed: Deployment) -> None:
    assert api_role.DEFAULT_ROLE == "events_api"  # the name the queries below spell out
    (attributes,) = deployed.psql(
        "SELECT concat_ws(',', rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin) "
        "FROM pg_roles WHERE rolname = 'events_api'"
    )
    assert attributes == "f,f,f,f,f,t"  # not superuser, no CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS; LOGIN
    assert deployed.psql("SELECT pg_has_role('events_api', 'events', 'MEMBER')") == ["f"]
    assert deployed.psql("SELECT count(*) FROM pg_class WHERE relowner = 'events_api'::regrole") == ["0"]
    rows = deployed.psql(
        "SELECT tablename, string_agg(privilege, ',' ORDER BY privilege) FILTER (WHERE has_table_privilege("
        "'events_api', format('public.%I', tablename), privilege)) FROM pg_tables, unnest(ARRAY['SELECT', 'INSERT', "
        "'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS privilege WHERE schemaname = 'public' "
        "GROUP BY tablename"
    )
    granted = {table: set(filter(None, privileges.split(","))) for table, privileges in (r.split("|") for r in rows)}
    assert granted == {table: set(api_role.GRANTS.get(table, ())) for table in granted}
    assert set(granted) >= set(api_role.GRANTS)
    schema_and_database = deployed.psql(
        "SELECT concat_ws(',', has_schema_privilege('events_api', 'public', 'CREATE'), "
        "has_schema_privilege('events_api', 'public', 'USAGE'), "
        "has_database_privilege('events_api', 'events', 'CREATE'), "
        "has_database_privilege('events_api', 'events', 'TEMPORARY'))"
    )
    assert schema_and_database == ["f,t,f,f"]  # no CREATE in the schema or database, no temporary tables


DENIED = [
    "CREATE TABLE intruder (id int)",
    "DROP TABLE events",
    "ALTER TABLE events ADD COLUMN intruder int",
    "DELETE FROM events",
    "TRUNCATE events",
    "UPDATE events SET source = source",
    "DELETE FROM event_counts_hour",
    "CREATE TEMPORARY TABLE intruder (id int)",
    "CREATE ROLE intruder",
    "SET ROLE events",
]
_TRY_AS_THE_API = """
import asyncio, json, sys
import asyncpg

async def main():
    connection = await asyncpg.connect(open(sys.argv[1]).read().strip())
    outcomes = {}
    for statement in json.loads(sys.argv[2]):
        try:
            await connection.execute(statement)
            outcomes[statement] = "done"
        except asyncpg.PostgresError as error:
            outcomes[statement] = error.sqlstate
    outcomes["SELECT"] = str(await connection.fetchval("SELECT count(*) FROM events"))
    print(json.dumps(outcomes))

asyncio.run(main())
"""


def test_the_api_role_can_change_no_schema_and_delete_nothing(deployed: Deployment) -> None:
    result = deployed.compose("exec", "-T", "api", "python", "-c", _TRY_AS_THE_API, URL_FILE, json.dumps(DENIED))
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)
    assert outcomes.pop("SELECT").isdigit()  # what it may do, it can
    assert outcomes == dict.fromkeys(DENIED, "42501")  # insufficient_privilege, every one


def test_the_optional_settings_reach_the_api_with_the_service_defaults(deployed: Deployment) -> None:
    in_container = deployed.compose("exec", "-T", "api", "python", "-m", "service", "--check-config")
    assert in_container.returncode == 0, in_container.stderr
    clean = {name: value for name, value in os.environ.items() if name.upper() not in COMPOSE_VARIABLES}
    clean = {name: value for name, value in clean.items() if not name.upper().startswith(("DATABASE_URL", "REDIS_URL"))}
    here = subprocess.run(
        [sys.executable, "-m", "service", "--check-config"],
        cwd=REPO,
        env={**clean, "DATABASE_URL": "postgresql://u:p@db/events", "API_KEY": "k" * 20, "JWT_SECRET": "j" * 40},
        capture_output=True,
        text=True,
        check=True,
    )
    effective = dict(line.split("=", 1) for line in in_container.stdout.splitlines())
    defaults = dict(line.split("=", 1) for line in here.stdout.splitlines())
    for settings in (effective, defaults):
        settings.pop("APP_VERSION")
    # the one setting the deployment chooses: X-Forwarded-For believed from the balancer's network alone
    assert (effective.pop("TRUSTED_PROXIES"), defaults.pop("TRUSTED_PROXIES")) == (EDGE_SUBNET, "")
    assert effective == defaults
    assert (effective["JWT_ISSUER"], effective["JWT_AUDIENCE"]) == ("None", "None")
    passed = dict(item.split("=", 1) for item in deployed.containers()["api"]["Config"]["Env"])
    for name in ("TRUSTED_PROXIES", "JWT_ISSUER", "JWT_AUDIENCE", "REQUEST_HEADER_TIMEOUT_S", "LIST_PAGE_MAX_BYTES"):
        assert name in passed, name


def test_no_secret_reaches_any_container_log(deployed: Deployment) -> None:
    httpx.get(f"{deployed.base_url}/api/v1/events", headers={"X-API-Key": deployed.secrets["API_KEY"]}, timeout=5)
    logs = deployed.compose("logs", "--no-color")
    assert logs.returncode == 0
    text = logs.stdout + logs.stderr
    assert '"logger":"access"' in text  # the API's own log lines are there
    for name, value in deployed.secrets.items():
        assert value not in text, name
    api_password = httpx.URL(deployed.api_database_url()).password or ""
    assert len(api_password) == 64
    assert api_password not in text, "the API role's password"


def _logged_by_replica(deployed: Deployment, request_ids: list[str]) -> dict[str, int]:
    """How many of `request_ids` each API replica logged (every access line carries the request id)."""
    counts = {}
    for container in deployed.replicas()["api"]:
        logs = subprocess.run(["docker", "logs", container["Id"]], capture_output=True, text=True, check=True)
        text = logs.stdout + logs.stderr
        counts[container["Name"]] = sum(f'"request_id":"{request_id}"' in text for request_id in request_ids)
    return counts


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + ROTATION_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {ROTATION_TIMEOUT_S:.0f} s: {what}"
        time.sleep(0.25)


def test_the_balancer_spreads_requests_over_every_replica_and_keeps_one_request_id(deployed: Deployment) -> None:
    headers = {"X-API-Key": deployed.secrets["API_KEY"]}
    sent = [f"rb-lb-{uuid.uuid4().hex[:12]}-{i}" for i in range(20)]
    with httpx.Client(base_url=deployed.base_url, headers=headers, timeout=10) as client:
        for request_id in sent:
            response = client.get(f"/api/v1/events/{uuid.uuid4()}", headers={"X-Request-Id": request_id})
            assert response.status_code == 404, response.text
            assert response.headers["X-Request-Id"] == request_id
        minted = client.get(f"/api/v1/events/{uuid.uuid4()}", headers={"X-Request-Id": "not a valid id!"})
    assert minted.headers["X-Request-Id"] != "not a valid id!"  # replaced at the balancer, then kept
    _wait_for(lambda: sum(_logged_by_replica(deployed, [*sent, minted.headers["X-Request-Id"]]).values()) == 21, "logs")
    served = _logged_by_replica(deployed, sent)
    assert len(served) == REPLICAS
    assert sum(served.values()) == len(sent)
    assert all(count > 0 for count in served.values()), served  # round robin reaches every replica


def test_rotation_follows_readiness_and_no_ready_replica_is_a_problem_json_503(deployed: Deployment) -> None:
    first, second = (container["Id"] for container in deployed.replicas()["api"])
    headers = {"X-API-Key": deployed.secrets["API_KEY"]}
    try:
        # 1. One replica stops (SIGTERM: readiness `draining`, then drain) under traffic: the balancer takes
        #    it out and the clients see nothing of it.
        started = time.monotonic()
        stopping = subprocess.Popen(["docker", "stop", "-t", "30", first], stdout=subprocess.DEVNULL)
        statuses: list[int | str] = []
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=deployed.base_url, headers=headers, timeout=10) as client:
            while (stopping.poll() is None or len(statuses) < 20) and len(statuses) < 2000:
                assert time.monotonic() < deadline, "docker stop did not finish"
                try:
                    statuses.append(client.get(f"/api/v1/events/{uuid.uuid4()}").status_code)
                except httpx.HTTPError as error:
                    statuses.append(type(error).__name__)
        assert stopping.wait(timeout=60) == 0
        assert set(statuses) == {404}, {status: statuses.count(status) for status in set(statuses)}
        drained_s = time.monotonic() - started

        # 2. The other one stops too: the balancer answers like the service, not with HAProxy's page.
        subprocess.run(["docker", "stop", "-t", "30", second], check=True, capture_output=True, timeout=60)
        started = time.monotonic()
        _wait_for(lambda: not deployed.routed(), "the balancer notices no replica is ready")
        none_ready_s = time.monotonic() - started
        refused = httpx.get(f"{deployed.base_url}/api/v1/events", headers={**headers, "X-Request-Id": "rb-lb-none"})
        assert refused.status_code == 503
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert refused.headers["Retry-After"] == "2"
        assert refused.headers["X-Request-Id"] == "rb-lb-none"
        problem = refused.json()
        assert (problem["status"], problem["code"], problem["request_id"]) == (503, "NO_READY_REPLICA", "rb-lb-none")
        assert problem["type"].startswith("urn:events-api:problem:")
    finally:
        subprocess.run(["docker", "start", first, second], capture_output=True, timeout=60, check=False)
    # 3. Back: each replica rejoins once it is ready again.
    started = time.monotonic()
    _wait_for(deployed.routed, "a replica back in rotation")
    _wait_for(lambda: all(n > 0 for n in _served_now(deployed, headers).values()), "both replicas back in rotation")
    print(
        f"rotation: {len(statuses)} requests while a replica stopped ({drained_s:.1f} s), none failed; "
        f"503 problem+json {none_ready_s:.1f} s after `docker stop` of the last one returned; both back "
        f"in rotation {time.monotonic() - started:.1f} s after `docker start`",
        file=sys.stderr,
    )


def _served_now(deployed: Deployment, headers: dict[str, str]) -> dict[str, int]:
    """Which replicas a few fresh requests reach."""
    sent = [f"rb-lb-{uuid.uuid4().hex[:12]}" for _ in range(6)]
    with httpx.Client(base_url=deployed.base_url, headers=headers, timeout=10) as client:
        for request_id in sent:
            client.get(f"/api/v1/events/{uuid.uuid4()}", headers={"X-Request-Id": request_id})
    time.sleep(0.5)  # the replicas' log lines are written after the answer
    return _logged_by_replica(deployed, sent)


def _running(container_id: str) -> bool:
    result = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Running}}", container_id],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() == "true"


def test_a_killed_replica_fails_at_most_the_request_in_flight_and_rejoins(deployed: Deployment) -> None:
    victim = deployed.replicas()["api"][0]["Id"]
    headers = {"X-API-Key": deployed.secrets["API_KEY"]}
    answers: list[httpx.Response | str] = []
    killed_at: int | None = None
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=deployed.base_url, headers=headers, timeout=10) as client:
        # One client, one request at a time: at most one request is in flight on the victim when it dies.
        while len(answers) < 400 and time.monotonic() < deadline:
            if len(answers) == 100:
                subprocess.run(["docker", "kill", victim], check=True, capture_output=True, timeout=30)
                killed_at = len(answers)
            try:
                answers.append(client.get(f"/api/v1/events/{uuid.uuid4()}"))
            except httpx.HTTPError as error:
                answers.append(type(error).__name__)
    assert killed_at == 100, "the loop never reached the kill"
    failed = [a for a in answers if isinstance(a, str) or a.status_code != 404]
    assert len(answers) == 400, f"{len(answers)} answers within 30 s"
    assert len(failed) <= 1, [a if isinstance(a, str) else (a.status_code, a.text[:200]) for a in failed]
    for answer in failed:  # the one in flight, if the kill caught one: the balancer's problem+json, not a reset
        assert not isinstance(answer, str), answer
        assert answer.status_code == 502, answer.text
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.json()["code"] == "REPLICA_FAILED"
    print(f"instance killed: {len(answers)} requests, {len(failed)} failed (in flight at the kill)", file=sys.stderr)
    # `restart: unless-stopped` brings it back (or, where the engine counts a kill as a manual stop, we do).
    try:
        _wait_for(lambda: _running(victim), "the killed replica restarted by its restart policy")
    except AssertionError:
        subprocess.run(["docker", "start", victim], check=True, capture_output=True, timeout=60)
    _wait_for(
        lambda: all(n > 0 for n in _served_now(deployed, headers).values()), "the killed replica back in rotation"
    )


def test_a_second_up_reruns_the_migration_and_keeps_the_api_role_password(deployed: Deployment) -> None:
    # Last in this module: it restarts the one-shot migration of the shared deployment.
    url = deployed.api_database_url()
    started = deployed.containers()["migrate"]["State"]["StartedAt"]
    up = deployed.compose("up", "-d", timeout=UP_TIMEOUT_S)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    while True:
        state = deployed.containers()["migrate"]["State"]
        if state["StartedAt"] != started and state["Status"] == "exited":
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state["ExitCode"] == 0, deployed.compose("logs", "--no-color", "migrate").stdout[-3000:]
    assert "password kept" in deployed.compose("logs", "--no-color", "migrate").stdout
    assert deployed.api_database_url() == url
    headers = {"X-API-Key": deployed.secrets["API_KEY"]}
    event = {"source": "compose-ci", "type": "rerun.checked", "occurred_at": "2026-11-26T11:00:00Z"}
    created = httpx.post(f"{deployed.base_url}/api/v1/events", json=event, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
