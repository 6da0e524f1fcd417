"""docker-compose.prod.yml, the Dockerfile and the CI override, read as files (RB-OPS-COMPOSE; no Docker needed).

What compose does with them for real (healthy stack, migration, refusal without secrets) is tested by
tests/service/test_compose_prod.py on a Docker engine, and the chaos overlay (docker-compose.chaos.yml, whose
structure is checked here too) by tests/deployment/test_deployment.py. Here: the structure the runbook asks for,
the secrets without defaults, ports on 127.0.0.1 only, every container locked down and limited, and compose's variable
interpolation applied by a small model of it. The last part runs what the `migrate` service runs after the
migration, `python -m migrations.api_role`, against a throwaway PostgreSQL: the API's least-privileged role,
and the service working with nothing more.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import ipaddress
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from chaos.stack import images as docker_images
from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess
from migrations import api_role
from service.events.tables import metadata
from service.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.prod.yml"
CI_OVERRIDE = REPO / "chaos" / "stack" / "images" / "compose.ci.yml"
DOCKERFILE = REPO / "Dockerfile"
BALANCER = REPO / "deploy" / "haproxy"
CHAOS_OVERLAY = REPO / "docker-compose.chaos.yml"
CHAOS_IMAGES = REPO / "deploy" / "chaos"
SECRETS = ("POSTGRES_PASSWORD", "API_KEY", "JWT_SECRET")
GOOD_SECRETS = {"POSTGRES_PASSWORD": "pw0123456789", "API_KEY": "k" * 20, "JWT_SECRET": "j" * 40}
SERVICES = ("postgres", "redis", "migrate", "api", "lb")
EDGE_SUBNET = "10.250.250.0/26"  # the balancer's network, whose X-Forwarded-For the replicas believe
# Optional settings the API must receive (with the service's defaults), also those the service does not read yet.
PASSED_THROUGH = {
    "JWT_ISSUER": "",
    "JWT_AUDIENCE": "",
    "REQUEST_HEADER_TIMEOUT_S": "5",
    "REQUEST_BODY_TIMEOUT_S": "30",
    "REQUEST_BODY_MIN_RATE_BPS": "4096",
    "REQUEST_BODY_GRACE_S": "5",
    "LIST_PAGE_MAX_BYTES": "4194304",
    "EVENT_ATTRIBUTES_MAX_BYTES": "65536",
}


class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(
    r"\$(?:\$"  # $$: a literal $
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"  # ${NAME}, ${NAME:-x}, ${NAME:?x}
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"  # $NAME
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or value == ""
        if op in (":?", "?") and (value is None or (op == ":?" and unset_or_empty)):
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and (value is None or (op == ":-" and unset_or_empty)):
            return arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def load(env: dict[str, str], *files: Path) -> dict[str, Any]:
    """The files interpolated with `env` and merged (services' mappings merged key by key, like compose).

    Like compose, each string value of the parsed file is interpolated (so `KEY: ${VAR:-}` is "", not null)."""
    merged: dict[str, Any] = {}
    for path in files or (COMPOSE,):
        _merge(merged, _interpolated(yaml.safe_load(path.read_text()), env))
    return merged


def _interpolated(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, dict):
        return {key: _interpolated(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolated(item, env) for item in value]
    return value


# Service keys whose lists compose merges (the override's items added to the base's) instead of replacing.
MERGED_LISTS = {"ports", "networks", "expose", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop", "security_opt"}


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif key in MERGED_LISTS and isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + [item for item in value if item not in into[key]]
        else:
            into[key] = value


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The file as YAML, before interpolation."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    return load(dict(GOOD_SECRETS))


def test_the_runbook_services_are_there(raw: dict[str, Any]) -> None:
    assert set(raw["services"]) == set(SERVICES)
    assert raw["services"]["postgres"]["image"] == "postgres:15"
    assert raw["services"]["redis"]["image"] == "redis:7"


def test_api_and_migrate_are_built_from_the_repo_dockerfile_as_one_image(raw: dict[str, Any]) -> None:
    api, migrate = raw["services"]["api"], raw["services"]["migrate"]
    for service in (api, migrate):
        assert service["build"]["context"] == "."
        assert (REPO / service["build"].get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert api["image"] == migrate["image"]
    assert migrate["restart"] == "no"


def migrate_steps(migrate: dict[str, Any]) -> list[list[str]]:
    """The commands of the migrate service's `sh -c "A && exec B"`, each as its words."""
    shell, flag, script = migrate["command"]
    assert (shell, flag) == ("sh", "-c")
    return [shlex.split(step.removeprefix("exec ")) for step in script.split(" && ")]


def test_the_migration_runs_as_the_owner_then_makes_the_api_role(raw: dict[str, Any]) -> None:
    migrate = raw["services"]["migrate"]
    upgrade, role = migrate_steps(migrate)
    assert upgrade == ["python", "-m", "alembic", "upgrade", "head"]
    assert role[:3] == ["python", "-m", "migrations.api_role"]
    url_file = role[role.index("--url-file") + 1]
    assert "DATABASE_URL" in migrate["environment"]  # the owner's
    # ... written into the credentials volume, which the API mounts read-only and reads DATABASE_URL_FILE from
    volume, directory = migrate["volumes"][0].split(":")
    assert Path(url_file).parent == Path(directory)
    assert f"{volume}:{directory}:ro" in raw["services"]["api"]["volumes"]
    assert raw["services"]["api"]["environment"]["DATABASE_URL_FILE"] == url_file
    assert volume in raw["volumes"]
    # the image creates that directory for its user, so that a new volume starts as it
    assert re.search(rf"install -d -o 10001 -g 10001 -m 0700 {directory}$", DOCKERFILE.read_text(), re.MULTILINE)


def test_startup_order_waits_for_health_and_the_migration(raw: dict[str, Any]) -> None:
    services = raw["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["api"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert services["lb"]["depends_on"] == {"api": {"condition": "service_started"}}  # it answers 503 itself
    for name in ("postgres", "redis", "api", "lb"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert not check.get("disable"), name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "/health/live" in " ".join(services["api"]["healthcheck"]["test"])


def test_secrets_are_required_and_have_no_default_anywhere() -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        references = re.findall(rf"\$\{{{name}([^}}]*)\}}", text)
        assert references, f"{name} is not used"
        assert all(reference.startswith(":?") for reference in references), (name, references)
        assert not re.search(rf"\${name}\b", text), f"${name} without braces cannot be required"
    rendered = load(dict(GOOD_SECRETS))
    api_env = rendered["services"]["api"]["environment"]
    assert api_env["API_KEY"] == GOOD_SECRETS["API_KEY"]
    assert api_env["JWT_SECRET"] == GOOD_SECRETS["JWT_SECRET"]
    assert rendered["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == GOOD_SECRETS["POSTGRES_PASSWORD"]
    url = rendered["services"]["migrate"]["environment"]["DATABASE_URL"]
    assert url == f"postgresql://events:{GOOD_SECRETS['POSTGRES_PASSWORD']}@postgres:5432/events"


def test_no_other_variable_is_required() -> None:
    required = set(re.findall(r"\$\{(\w+):?\?", COMPOSE.read_text()))
    assert required == set(SECRETS)
    load(dict(GOOD_SECRETS))  # nothing else has to be set


def test_the_api_never_sees_the_database_owner_password(rendered: dict[str, Any]) -> None:
    api = rendered["services"]["api"]
    assert "POSTGRES_PASSWORD" not in api["environment"]
    assert "DATABASE_URL" not in api["environment"]  # the owner's URL; the API reads its own from a file
    assert GOOD_SECRETS["POSTGRES_PASSWORD"] not in yaml.safe_dump(api)
    assert GOOD_SECRETS["POSTGRES_PASSWORD"] not in yaml.safe_dump(rendered["services"]["redis"])


@pytest.mark.parametrize("missing", SECRETS)
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_interpolation_refuses_without_each_secret(missing: str, how: str) -> None:
    env = dict(GOOD_SECRETS)
    if how == "unset":
        del env[missing]
    else:
        env[missing] = ""
    with pytest.raises(MissingVariable, match=rf"^{missing}: {missing} is required"):
        load(env)


def test_only_the_balancer_is_published_and_only_on_loopback(rendered: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in rendered["services"].items()}
    assert {name for name, ports in published.items() if ports} == {"lb"}
    for port in published["lb"]:
        assert isinstance(port, str)
        assert port.startswith("127.0.0.1:"), port
    assert published["lb"] == ["127.0.0.1:8000:8080"]
    assert load({**GOOD_SECRETS, "API_PORT": "18080"})["services"]["lb"]["ports"] == ["127.0.0.1:18080:8080"]


def test_the_api_runs_as_replicas_two_by_default(rendered: dict[str, Any]) -> None:
    assert str(rendered["services"]["api"]["scale"]) == "2"
    assert str(load({**GOOD_SECRETS, "API_REPLICAS": "3"})["services"]["api"]["scale"]) == "3"
    assert "container_name" not in rendered["services"]["api"]  # a fixed name would allow one replica only


# The Docker engine's default address pools: every network without a subnet of its own is carved from these.
DOCKER_DEFAULT_POOLS = [ipaddress.ip_network(f"172.{octet}.0.0/16") for octet in range(17, 32)] + [
    ipaddress.ip_network("192.168.0.0/16")
]


def test_every_fixed_subnet_lies_outside_the_engines_default_pools(rendered: dict[str, Any]) -> None:
    """Inside them, an engine that has handed out enough networks gives another network of the same project an
    overlapping range, and `up` fails with "Pool overlaps with other one on this address space" (seen in CI)."""
    for name, network in rendered["networks"].items():
        for config in (network or {}).get("ipam", {}).get("config", []):
            subnet = ipaddress.ip_network(config["subnet"])
            overlapping = [str(pool) for pool in DOCKER_DEFAULT_POOLS if subnet.overlaps(pool)]
            assert overlapping == [], f"network {name}: {subnet} overlaps the default pool(s) {overlapping}"


def test_the_database_and_redis_sit_on_an_internal_network(rendered: dict[str, Any]) -> None:
    assert rendered["networks"]["backend"] == {"internal": True}
    for name in ("postgres", "redis", "migrate"):
        assert rendered["services"][name]["networks"] == ["backend"], name
    assert set(rendered["services"]["api"]["networks"]) == {"backend", "edge"}


def test_the_replicas_are_reached_only_through_the_balancer(rendered: dict[str, Any]) -> None:
    edge = rendered["networks"]["edge"]
    assert edge["internal"] is True  # no route out, and no published port reaches it
    assert edge["ipam"]["config"] == [{"subnet": EDGE_SUBNET}]
    assert set(rendered["services"]["lb"]["networks"]) == {"public", "edge"}
    on_edge = {name for name, service in rendered["services"].items() if "edge" in service["networks"]}
    assert on_edge == {"api", "lb"}
    # so the replicas believe X-Forwarded-For from that network alone: client addresses, not the balancer's
    assert rendered["services"]["api"]["environment"]["TRUSTED_PROXIES"] == EDGE_SUBNET
    assert "option forwardfor" in (BALANCER / "haproxy.cfg").read_text()


def _balancer_directives() -> list[str]:
    """haproxy.cfg's directives, comments and blank lines left out."""
    lines = (BALANCER / "haproxy.cfg").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_balancer_routes_by_readiness() -> None:
    directives = _balancer_directives()
    assert "http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host lb" in directives
    # 200, or degraded on Redis alone (the service serves on in-process limits then); nothing else.
    assert any(d.startswith('http-check expect rstring "\\"status\\": ?\\"ready\\"|') for d in directives)
    defaults = next(line for line in directives if line.startswith("default-server"))
    words = defaults.split()
    # out after one failed check (a 503: degraded, draining, schema), back after two good ones, every second
    assert words[words.index("fall") + 1] == "1"
    assert words[words.index("rise") + 1] == "2"
    assert words[words.index("inter") + 1] == "1s"
    assert "check" in words
    assert "server-template api 1-16 api:8000" in directives  # at most 16 replicas, found by DNS
    assert "option redispatch 1" in directives  # a request refused by a dead replica goes to another one


def test_the_balancer_answers_like_the_service_when_no_replica_is_ready() -> None:
    error = next(line for line in _balancer_directives() if line.startswith("http-error status 503"))
    assert "content-type application/problem+json" in error
    assert "hdr Retry-After 2" in error
    assert 'hdr X-Request-Id "%[var(txn.request_id)]"' in error
    body = error.split("lf-string ", 1)[1].strip("'")
    for field in ('"status":503', '"code":"NO_READY_REPLICA"', '"type":"urn:events-api:problem:', '"request_id":'):
        assert field in body, field


def test_every_answer_the_balancer_gives_itself_is_problem_json() -> None:
    directives = _balancer_directives()
    generated = {line.split()[2]: line for line in directives if line.startswith("http-error status ")}
    files = {line.split()[1]: line.split()[2] for line in directives if line.startswith("errorfile ")}
    # every status HAProxy generates in this setup: parse errors and header timeouts from static files (the
    # parser answers before any rule runs), the others with the request id
    assert set(generated) | set(files) == {"400", "408", "500", "502", "503", "504"}
    assert set(generated) & set(files) == set()
    for status, line in generated.items():
        assert "content-type application/problem+json" in line, status
        assert f'"status":{status},' in line, status
        assert '"code":"' in line, status
        assert '"request_id":"%[var(txn.request_id)]"' in line, status
    for status, path in files.items():
        assert path == f"/etc/haproxy/errors/{status}.http"  # where the Dockerfile copies errors/
        raw = (BALANCER / "errors" / f"{status}.http").read_bytes()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0].startswith(f"HTTP/1.1 {status} ")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        assert fields["Content-Type"] == "application/problem+json"
        assert int(fields["Content-Length"]) == len(body)  # HAProxy sends the file as it is
        problem = json.loads(body)
        assert (problem["status"], problem["request_id"]) == (int(status), None)
        assert problem["type"].startswith("urn:events-api:problem:")


def test_the_balancer_image_is_haproxy_from_debian_as_a_non_root_user() -> None:
    text = (BALANCER / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions[0] == ["ARG", "BASE_IMAGE=debian:bookworm-slim"]
    assert instructions[1] == ["FROM", "${BASE_IMAGE}"]
    assert "apt-get install -y --no-install-recommends haproxy" in text
    assert ["USER", "haproxy"] in instructions
    assert any(parts[0] == "RUN" and "haproxy -c" in parts[1] for parts in instructions)  # checked when built


def test_the_api_container_is_locked_down(rendered: dict[str, Any]) -> None:
    api = rendered["services"]["api"]
    assert api["tmpfs"] == ["/tmp"]  # noqa: S108 - the container's own /tmp (multiprocess metrics)
    # drain (DRAIN_DELAY_S) + hypercorn's graceful_timeout must fit before compose's SIGKILL
    assert int(api["stop_grace_period"].removesuffix("s")) >= 2 + 10


def size_in_bytes(value: str | int) -> int:
    """Compose's byte sizes: 268435456, "256m", "1g", "512k", "100b"."""
    match = re.fullmatch(r"(\d+)([bkmg]?)", str(value).lower())
    assert match, value
    return int(match.group(1)) << (10 * "bkmg".index(match.group(2) or "b"))


# Who each container starts as: postgres and redis as their own users (then their entrypoints need no
# capability), the API image as uid 10001 (its USER).
USERS = {"postgres": "postgres", "redis": "redis", "migrate": None, "api": None, "lb": None}


@pytest.mark.parametrize("name", SERVICES)
def test_every_container_is_locked_down_and_limited(rendered: dict[str, Any], name: str) -> None:
    service = rendered["services"][name]
    assert service["cap_drop"] == ["ALL"]
    assert not service.get("cap_add"), "no capability is added back: none of the processes needs one"
    assert not service.get("privileged")
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["read_only"] is True
    assert service.get("user") == USERS[name]
    # Service-level limits: Compose v1 ignores `deploy.resources` unless run with --compatibility.
    assert "deploy" not in service
    memory = size_in_bytes(service["mem_limit"])
    assert 64 * 2**20 <= memory <= 4 * 2**30
    assert size_in_bytes(service["memswap_limit"]) == memory, "no swap beyond the memory limit"
    assert isinstance(service["pids_limit"], int)
    assert 16 <= service["pids_limit"] <= 1024


def test_postgres_has_room_for_its_connections_and_redis_evicts_before_its_limit(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert services["postgres"]["pids_limit"] > 100 + 20  # max_connections (default 100) + its own processes
    assert set(services["postgres"]["tmpfs"]) >= {"/var/run/postgresql"}  # socket and lock file
    command = services["redis"]["command"]
    maxmemory = size_in_bytes(command[command.index("--maxmemory") + 1].removesuffix("b"))
    assert maxmemory <= 0.8 * size_in_bytes(services["redis"]["mem_limit"])
    assert command[command.index("--maxmemory-policy") + 1] == "allkeys-lru"


def test_the_optional_settings_are_passed_through_with_the_service_defaults(
    raw: dict[str, Any], rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api_env: dict[str, str] = raw["services"]["api"]["environment"]
    optional = {}
    for name, value in api_env.items():
        match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", str(value))
        if match:
            assert match.group(1) == name
            optional[name] = match.group(2)
    assert optional.items() >= PASSED_THROUGH.items()
    assert {"MAX_REQUEST_BODY_BYTES", "INGEST_MAX_BATCH_ITEMS", "RATE_LIMIT_BACKEND", "DRAIN_DELAY_S"} <= set(optional)

    # What the service makes of the rendered environment equals its own defaults, field by field.
    url_file = tmp_path / "api_database_url"
    url_file.write_text("postgresql://events_api:pw@postgres:5432/events\n")
    for name in list(os.environ):
        if name.upper() in {*optional, "DATABASE_URL", "REDIS_URL", "API_KEY", "JWT_SECRET"} or name.endswith("_FILE"):
            monkeypatch.delenv(name)
    for name, value in rendered["services"]["api"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("DATABASE_URL_FILE", str(url_file))
    from_compose = load_settings()
    for name in optional:
        monkeypatch.delenv(name)
    defaults = load_settings()
    for name in optional.keys() - {"TRUSTED_PROXIES"}:  # the one chosen for the deployment: the edge network
        field = name.lower()
        if field in Settings.model_fields:  # the others are ignored until the service has them
            assert getattr(from_compose, field) == getattr(defaults, field), name
    assert from_compose.jwt_issuer is None
    assert from_compose.jwt_audience is None
    assert [str(network) for network in from_compose.trusted_proxy_networks()] == [EDGE_SUBNET]


def test_the_dockerfile_builds_a_slim_non_root_service_image() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    keywords = [parts[0] for parts in instructions]
    assert instructions[0] == ["ARG", "BASE_IMAGE=python:3.11-slim"]
    assert instructions[1] == ["FROM", "${BASE_IMAGE}"]
    assert keywords.count("FROM") == 1
    user = next(parts[1] for parts in instructions if parts[0] == "USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") > max(i for i, keyword in enumerate(keywords) if keyword == "RUN")
    assert re.search(r"HEALTHCHECK .*\n?.*/health/live", text)
    cmd = next(parts[1] for parts in instructions if parts[0] == "CMD")
    assert cmd == '["python", "-m", "service", "--bind", "0.0.0.0:8000"]'
    assert ["EXPOSE", "8000"] in instructions


def test_the_build_context_leaves_out_the_checkout_clutter() -> None:
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"  # an allowlist: nothing goes in unless named
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set(re.findall(r"^COPY (\S+(?: \S+)*) \S+$", DOCKERFILE.read_text(), re.MULTILINE))
    sources = {source for line in copied for source in line.split()}
    assert sources <= allowed, sources - allowed
    assert not allowed & {".venv", ".git", "tests", "reports"}


def test_the_ci_override_only_swaps_in_the_local_images() -> None:
    override: dict[str, Any] = yaml.safe_load(CI_OVERRIDE.read_text())
    production = yaml.safe_load(COMPOSE.read_text())
    assert set(override) == {"services"}
    assert set(override["services"]) <= set(production["services"])
    assert override["services"]["postgres"] == {"image": docker_images.IMAGES["postgres"].local}
    assert override["services"]["redis"] == {"image": docker_images.IMAGES["redis"].local}
    for name in ("api", "migrate"):
        assert override["services"][name] == {"build": {"args": {"BASE_IMAGE": docker_images.IMAGES["python"].local}}}
    assert override["services"]["lb"] == {"build": {"args": {"BASE_IMAGE": docker_images.LOCAL_BASE_IMAGE}}}
    merged = load(dict(GOOD_SECRETS), COMPOSE, CI_OVERRIDE)
    assert merged["services"]["api"]["build"] == {
        "context": ".",
        "dockerfile": "Dockerfile",
        "args": {"BASE_IMAGE": docker_images.IMAGES["python"].local},
    }
    assert merged["services"]["lb"]["ports"] == ["127.0.0.1:8000:8080"]


def test_image_choice_prefers_what_the_engine_has() -> None:
    postgres = docker_images.IMAGES["postgres"]
    assert docker_images.resolve("postgres", lambda image: True) == postgres.public
    assert docker_images.resolve("postgres", lambda image: image == postgres.local) == postgres.local
    assert docker_images.resolve("postgres", lambda image: False) == postgres.public  # pulled where possible
    assert not docker_images.available("postgres", lambda image: False)


# -- the chaos overlay: docker-compose.chaos.yml beside the production file ---------------------------------------

# What the overlay may set on the production file's services; everything else of theirs stays as it is.
OVERLAY_CHANGES = {
    "postgres": {"ports", "networks"},
    "migrate": {"command"},
    "api": {"environment", "networks", "depends_on"},
    "lb": {"ports"},
}
OVERLAY_SERVICES = ("faultproxy", "prometheus")


@pytest.fixture(scope="module")
def overlay() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CHAOS_OVERLAY.read_text())
    return loaded


@pytest.fixture(scope="module")
def with_overlay() -> dict[str, Any]:
    return load(dict(GOOD_SECRETS), COMPOSE, CHAOS_OVERLAY)


def fault_proxies(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The proxies the fault proxy creates at start (its FAULT_PROXIES environment), by name."""
    return {proxy["name"]: proxy for proxy in json.loads(service["environment"]["FAULT_PROXIES"])}


def test_the_overlay_changes_nothing_in_the_production_file_but_what_it_adds(
    overlay: dict[str, Any], raw: dict[str, Any], rendered: dict[str, Any], with_overlay: dict[str, Any]
) -> None:
    assert set(overlay) == {"services", "networks", "volumes"}
    assert set(overlay["services"]) == set(OVERLAY_CHANGES) | set(OVERLAY_SERVICES)
    for name, keys in OVERLAY_CHANGES.items():
        assert set(overlay["services"][name]) == keys, name
        merged, production = with_overlay["services"][name], rendered["services"][name]
        for key in production.keys() - keys:
            assert merged[key] == production[key], (name, key)
    # new networks and volumes only, none of the production file's redefined
    assert not set(overlay["networks"]) & set(raw["networks"])
    assert not set(overlay["volumes"]) & set(raw["volumes"])
    # the API's environment: REDIS_URL alone is overridden
    assert set(overlay["services"]["api"]["environment"]) == {"REDIS_URL"}
    # the production networks stay on every service, the overlay's only add to them
    for name in OVERLAY_CHANGES.keys() & {"postgres", "api"}:
        assert set(rendered["services"][name]["networks"]) <= set(overlay["services"][name]["networks"]), name
    # the secrets are still required, and the overlay requires nothing more
    assert set(re.findall(r"\$\{(\w+):?\?", CHAOS_OVERLAY.read_text())) == set()
    with pytest.raises(MissingVariable, match=r"^API_KEY: "):
        load({**GOOD_SECRETS, "API_KEY": ""}, COMPOSE, CHAOS_OVERLAY)


def test_the_overlay_migrate_command_is_the_production_one_with_the_proxy_as_url_host(
    raw: dict[str, Any], overlay: dict[str, Any]
) -> None:
    production, chaos = migrate_steps(raw["services"]["migrate"]), migrate_steps(overlay["services"]["migrate"])
    assert chaos[0] == production[0]
    assert chaos[1][: len(production[1])] == production[1]
    assert chaos[1][len(production[1]) :] == ["--url-host", "faultproxy:15432"]


def test_the_overlay_publishes_only_on_loopback(with_overlay: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in with_overlay["services"].items()}
    assert {name for name, ports in published.items() if ports} == {"lb", "faultproxy", "prometheus", "postgres"}
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str)
            assert port.startswith("127.0.0.1:"), (name, port)
    assert published["lb"] == ["127.0.0.1:8000:8080", "127.0.0.1:8404:8404"]
    ports = {
        "API_PORT": "1",
        "FAULT_PROXY_PORT": "2",
        "CHAOS_PG_PORT": "3",
        "PROMETHEUS_PORT": "4",
        "LB_STATS_PORT": "5",
    }
    chosen = load({**GOOD_SECRETS, **ports}, COMPOSE, CHAOS_OVERLAY)["services"]
    assert chosen["lb"]["ports"] == ["127.0.0.1:1:8080", "127.0.0.1:5:8404"]
    assert chosen["faultproxy"]["ports"] == ["127.0.0.1:2:8474"]
    assert chosen["postgres"]["ports"] == ["127.0.0.1:3:5432"]
    assert chosen["prometheus"]["ports"] == ["127.0.0.1:4:9090"]


def test_the_production_file_does_not_publish_the_stats_page(rendered: dict[str, Any]) -> None:
    assert rendered["services"]["lb"]["ports"] == ["127.0.0.1:8000:8080"]
    directives = _balancer_directives()
    stats = directives[directives.index("frontend stats") : directives.index("frontend api")]
    assert "bind :8404" in stats
    assert "stats uri /stats" in stats
    assert "stats show-legends" in stats  # the CSV's addr column: which replica each slot holds
    assert not [line for line in stats if line.startswith(("stats admin", "stats refresh", "stats auth"))]


def test_the_replicas_reach_their_dependencies_only_through_the_fault_proxy(with_overlay: dict[str, Any]) -> None:
    services = with_overlay["services"]
    proxies = fault_proxies(services["faultproxy"])
    assert {name: proxy["upstream"] for name, proxy in proxies.items()} == {
        "postgres": "postgres:5432",
        "redis": "redis:6379",
    }
    assert all(proxy["enabled"] for proxy in proxies.values())
    redis_url = httpx.URL(services["api"]["environment"]["REDIS_URL"])
    assert f"{redis_url.host}:{redis_url.port}" == "faultproxy:" + proxies["redis"]["listen"].rpartition(":")[2]
    role = migrate_steps(services["migrate"])[1]
    assert role[role.index("--url-host") + 1] == "faultproxy:" + proxies["postgres"]["listen"].rpartition(":")[2]
    command = " ".join(services["faultproxy"]["command"])
    assert "--allow-upstream postgres --allow-upstream redis" in command
    assert services["api"]["depends_on"]["faultproxy"] == {"condition": "service_healthy"}
    # A replica cut from `backend` reaches neither the proxy nor a dependency: they share no other network.
    api_networks = set(services["api"]["networks"])
    for name in ("faultproxy", "postgres", "redis"):
        assert api_networks & set(services[name]["networks"]) == {"backend"}, name
    # ... and the harness reaches each replica on `chaos`, which Prometheus scrapes on
    assert "chaos" in api_networks
    assert services["prometheus"]["networks"] == ["chaos"]
    for network in ("chaos", "harness"):
        assert not with_overlay["networks"][network].get("internal"), network  # this host reaches it
    assert with_overlay["networks"]["backend"] == {"internal": True}
    assert with_overlay["networks"]["edge"]["internal"] is True


def test_prometheus_discovers_the_replicas_and_evaluates_the_shipped_rules(with_overlay: dict[str, Any]) -> None:
    config = yaml.safe_load((CHAOS_IMAGES / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "750ms"  # production's 15 s on the drill clock (÷ 20)
    assert config["global"]["evaluation_interval"] == "750ms"
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "events-api"
    assert job["dns_sd_configs"] == [{"names": ["api"], "type": "A", "port": 8000, "refresh_interval": "1s"}]
    assert "static_configs" not in job  # service discovery, not a fixed list
    assert config["rule_files"] == ["/etc/prometheus/rules/@RULES@"]
    prometheus = with_overlay["services"]["prometheus"]
    assert "./service/alerts:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert prometheus["environment"]["PROMETHEUS_RULES"] == "events-api.rules.yml"
    assert (REPO / "service" / "alerts" / prometheus["environment"]["PROMETHEUS_RULES"]).is_file()
    chosen = load({**GOOD_SECRETS, "PROMETHEUS_RULES": "other.rules.yml"}, COMPOSE, CHAOS_OVERLAY)
    assert chosen["services"]["prometheus"]["environment"]["PROMETHEUS_RULES"] == "other.rules.yml"
    entrypoint = (CHAOS_IMAGES / "prometheus-entrypoint.sh").read_text()
    assert "s|@RULES@|$rules|" in entrypoint
    assert "exec prometheus" in entrypoint


@pytest.mark.parametrize("name", OVERLAY_SERVICES)
def test_the_overlay_containers_are_locked_down_and_limited(with_overlay: dict[str, Any], name: str) -> None:
    service = with_overlay["services"][name]
    assert service["cap_drop"] == ["ALL"]
    assert not service.get("cap_add")
    assert not service.get("privileged")
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["read_only"] is True
    memory = size_in_bytes(service["mem_limit"])
    assert 64 * 2**20 <= memory <= 2 * 2**30
    assert size_in_bytes(service["memswap_limit"]) == memory
    assert 16 <= service["pids_limit"] <= 1024
    assert service["healthcheck"]["test"][0] == "CMD"


def _dockerfile(path: Path) -> list[list[str]]:
    return [line.split(None, 1) for line in path.read_text().splitlines() if line and not line.startswith((" ", "#"))]


def test_the_overlay_images_build_on_a_base_image_argument_and_run_unprivileged() -> None:
    faultproxy = _dockerfile(CHAOS_IMAGES / "faultproxy.Dockerfile")
    assert faultproxy[:2] == [["ARG", "BASE_IMAGE=python:3.11-slim"], ["FROM", "${BASE_IMAGE}"]]
    assert ["USER", "65534:65534"] in faultproxy
    prometheus = _dockerfile(CHAOS_IMAGES / "prometheus.Dockerfile")
    assert prometheus[:2] == [["ARG", "BASE_IMAGE=debian:bookworm-slim"], ["FROM", "${BASE_IMAGE}"]]
    assert ["USER", "prometheus"] in prometheus
    assert (
        "apt-get install -y --no-install-recommends prometheus" in (CHAOS_IMAGES / "prometheus.Dockerfile").read_text()
    )
    override: dict[str, Any] = yaml.safe_load((CHAOS_IMAGES / "compose.ci.yml").read_text())
    assert override == {
        "services": {
            "faultproxy": {"build": {"args": {"BASE_IMAGE": docker_images.IMAGES["python"].local}}},
            "prometheus": {"build": {"args": {"BASE_IMAGE": docker_images.LOCAL_BASE_IMAGE}}},
        }
    }


def _first_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_fault_proxy_image_holds_everything_the_proxy_imports_and_nothing_else() -> None:
    copied = [parts[1].split() for parts in _dockerfile(CHAOS_IMAGES / "faultproxy.Dockerfile") if parts[0] == "COPY"]
    sources = {source for words in copied for source in words[:-1]}
    assert sources == {"chaos/__init__.py", "chaos/lifecycle.py", "chaos/proxy"}
    in_image = {"chaos", "chaos.lifecycle"} | {
        "chaos.proxy" + ("" if path.stem == "__init__" else f".{path.stem}")
        for path in (REPO / "chaos" / "proxy").glob("*.py")
    }
    # what `python -m chaos.proxy` imports, followed from module to module
    seen, pending = set(), ["chaos.proxy.__main__", "chaos.proxy"]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = REPO / Path(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        for name in _first_party_imports(path):
            if name.split(".")[0] == "chaos":
                if name in in_image or name.rpartition(".")[0] in in_image:
                    pending.append(name if name in in_image else name.rpartition(".")[0])
                else:
                    pytest.fail(f"{module} imports {name}, which the fault proxy image does not copy")
            else:
                # the standard library only; uvloop is optional (event_loop_factory falls back to asyncio)
                assert name.split(".")[0] in sys.stdlib_module_names | {"uvloop"}, f"{module} imports {name}"
    assert "chaos.proxy.client" not in seen  # toxiproxy-python's client is for the harness, not the server


# -- the API's database role: `python -m migrations.api_role`, as the `migrate` service runs it ------------------

ROLE = api_role.DEFAULT_ROLE
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def test_the_grants_name_every_table_the_service_uses() -> None:
    # A migration that adds a table the service needs must add it to GRANTS, or the API is refused it.
    assert set(api_role.GRANTS) == {*metadata.tables, "alembic_version"}


def make_api_role(owner_url: str, url_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrations.api_role", "--url-file", str(url_file), *args],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": owner_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sql(url: str, statement: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def privileges(owner_url: str) -> dict[str, set[str]]:
    """Table → the privileges the API role has on it, for every table of the schema."""
    rows = sql(
        owner_url,
        "SELECT tablename, privilege FROM pg_tables, unnest($2::text[]) AS privilege "
        "WHERE schemaname = 'public' AND has_table_privilege($1, format('public.%I', tablename), privilege)",
        ROLE,
        list(TABLE_PRIVILEGES),
    )
    granted: dict[str, set[str]] = {
        row["tablename"]: set() for row in sql(owner_url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    for row in rows:
        granted[row["tablename"]].add(row["privilege"])
    return granted


def expected_privileges(owner_url: str) -> dict[str, set[str]]:
    return {table: set(api_role.GRANTS.get(table, ())) for table in privileges(owner_url)}


@pytest.fixture(scope="module")
def api_database(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(owner URL, the API's URL file) after the migration (the `postgres` fixture) and one run of the module."""
    url_file = tmp_path_factory.mktemp("credentials") / "api_database_url"
    result = make_api_role(postgres.url("events"), url_file)
    assert result.returncode == 0, result.stdout + result.stderr
    password = httpx.URL(url_file.read_text().strip()).password or ""
    assert len(password) == 64
    assert password not in result.stdout + result.stderr, "the module printed the password"
    return postgres.url("events"), url_file


def test_the_api_role_url_is_kept_in_a_file_only_its_owner_reads(api_database: tuple[str, Path]) -> None:
    owner_url, url_file = api_database
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o400
    api, owner = httpx.URL(url_file.read_text().strip()), httpx.URL(owner_url)
    assert url_file.read_text().endswith("\n")
    assert (api.scheme, api.host, api.port, api.path) == (owner.scheme, owner.host, owner.port, owner.path)
    assert api.username == ROLE
    assert re.fullmatch(r"[0-9a-f]{64}", api.password or "")


def test_the_api_role_is_not_superuser_not_the_owner_and_holds_exactly_its_grants(
    api_database: tuple[str, Path],
) -> None:
    owner_url, _ = api_database
    (role,) = sql(owner_url, "SELECT * FROM pg_roles WHERE rolname = $1", ROLE)
    assert role["rolcanlogin"]
    for attribute in ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls", "rolinherit"):
        assert not role[attribute], attribute
    assert sql(owner_url, "SELECT 1 FROM pg_auth_members WHERE member = $1", role["oid"]) == []
    assert privileges(owner_url) == expected_privileges(owner_url)
    assert privileges(owner_url)["events"] == {"SELECT", "INSERT"}
    (checks,) = sql(
        owner_url,
        "SELECT has_schema_privilege($1, 'public', 'CREATE') AS schema_create, "
        "has_schema_privilege($1, 'public', 'USAGE') AS schema_usage, "
        "has_database_privilege($1, current_database(), 'CREATE') AS database_create, "
        "has_database_privilege($1, current_database(), 'TEMPORARY') AS temporary, "
        "has_database_privilege($1, current_database(), 'CONNECT') AS connect, "
        "(SELECT count(*) FROM pg_class WHERE relowner = $2) AS owned",
        ROLE,
        role["oid"],
    )
    assert dict(checks) == {
        "schema_create": False,
        "schema_usage": True,
        "database_create": False,
        "temporary": False,
        "connect": True,
        "owned": 0,
    }


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "DROP TABLE events",
        "ALTER TABLE events ADD COLUMN intruder int",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE events SET source = source",
        "DELETE FROM event_counts_day",
        "UPDATE alembic_version SET version_num = version_num",
        "CREATE TEMPORARY TABLE intruder (id int)",
        "CREATE SCHEMA intruder",
        "CREATE ROLE intruder",
        f"ALTER ROLE {ROLE} CREATEDB",
        "SET ROLE postgres",
    ],
)
def test_the_api_role_can_change_no_schema_and_delete_nothing(api_database: tuple[str, Path], statement: str) -> None:
    _, url_file = api_database
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        sql(url_file.read_text().strip(), statement)


@pytest.fixture(scope="module")
def service_as_api_role(api_database: tuple[str, Path], redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """The service with only the API role's URL, read from the file as the compose file's `api` does."""
    _, url_file = api_database
    env = {
        "DATABASE_URL": "",  # empty counts as unset: DATABASE_URL_FILE is the URL
        "DATABASE_URL_FILE": str(url_file),
        "REDIS_URL": redis_server.url(),
        "API_KEY": GOOD_SECRETS["API_KEY"],
        "JWT_SECRET": GOOD_SECRETS["JWT_SECRET"],
    }
    with ServiceProcess(env, workers=1) as running:
        yield running


def test_the_service_needs_nothing_more_than_the_api_role(
    api_database: tuple[str, Path], service_as_api_role: ServiceProcess
) -> None:
    owner_url, _ = api_database
    days = [f"2026-11-{day:02d}T12:00:00Z" for day in (20, 21, 21, 23)]
    with httpx.Client(
        base_url=service_as_api_role.base_url, headers={"X-API-Key": GOOD_SECRETS["API_KEY"]}, timeout=10
    ) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["schema_revision"]
        batch = [{"source": "role-check", "type": "granted", "occurred_at": day} for day in days]
        created = client.post("/api/v1/events", json={"items": batch})
        assert created.status_code == 201, created.text
        event_id = created.json()["ids"][0]
        again = client.post("/api/v1/events", json={**batch[0], "id": event_id})  # idempotent re-send
        assert again.status_code in {200, 201}, again.text
        assert client.get(f"/api/v1/events/{event_id}").json()["source"] == "role-check"
        listed = client.get("/api/v1/events", params={"source": "role-check"})
        assert len(listed.json()["items"]) == len(days), listed.text
        # Whole days: counted from the day rollup the insert trigger upserted as the API role.
        stats = client.get(
            "/api/v1/events/stats",
            params={"since": "2026-11-20T00:00:00Z", "until": "2026-11-24T00:00:00Z", "bucket": "day"},
        )
        assert stats.status_code == 200, stats.text
        assert stats.json()["total"] == len(days)
    counted = sql(owner_url, "SELECT sum(count) AS n FROM event_counts_day WHERE source = 'role-check'")
    assert counted[0]["n"] == len(days)
    users = sql(
        owner_url,
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'events' AND usename <> $1",
        httpx.URL(owner_url).username,
    )
    assert [row["usename"] for row in users] == [ROLE], "the service connects as the API role, not as the owner"


def test_a_rerun_keeps_the_password_and_takes_back_whatever_was_added(api_database: tuple[str, Path]) -> None:
    owner_url, url_file = api_database
    before = url_file.read_text()
    owner = httpx.URL(owner_url).username
    for statement in (
        f"GRANT DELETE, TRUNCATE ON events TO {ROLE}",
        f"ALTER ROLE {ROLE} CREATEDB CREATEROLE",
        f"GRANT {owner} TO {ROLE}",
        f"GRANT CREATE ON SCHEMA public TO {ROLE}",
        "CREATE TABLE IF NOT EXISTS added_by_a_later_migration (id int)",
        f"GRANT ALL ON added_by_a_later_migration TO {ROLE}",
    ):
        sql(owner_url, statement)
    assert "DELETE" in privileges(owner_url)["events"]

    result = make_api_role(owner_url, url_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unchanged; password kept" in result.stdout
    assert url_file.read_text() == before
    assert privileges(owner_url) == expected_privileges(owner_url)
    assert privileges(owner_url)["added_by_a_later_migration"] == set()
    (role,) = sql(owner_url, "SELECT * FROM pg_roles WHERE rolname = $1", ROLE)
    assert not role["rolcreatedb"]
    assert not role["rolcreaterole"]
    assert sql(owner_url, "SELECT 1 FROM pg_auth_members WHERE member = $1", role["oid"]) == []
    assert not sql(owner_url, "SELECT has_schema_privilege($1, 'public', 'CREATE') AS c", ROLE)[0]["c"]
    assert sql(before.strip(), "SELECT count(*) AS n FROM events")[0]["n"] >= 0  # the kept password still works


def test_the_url_host_option_names_where_the_api_reaches_the_server() -> None:
    owner = "postgresql://events:pw@postgres:5432/events?sslmode=disable"
    assert api_role.api_url(owner, ROLE, "secret") == f"postgresql://{ROLE}:secret@postgres:5432/events?sslmode=disable"
    via_proxy = api_role.api_url(owner, ROLE, "secret", "faultproxy:15432")
    assert via_proxy == f"postgresql://{ROLE}:secret@faultproxy:15432/events?sslmode=disable"
    for good in ("faultproxy:15432", "10.0.0.7:5432", "[::1]:5432", "db.internal.example:6432"):
        assert api_role.url_host(good) == good
    for bad in ("faultproxy", "faultproxy:0", "faultproxy:65536", "user@host:5432", "host:5432/db", ":5432", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            api_role.url_host(bad)


def test_a_rerun_with_url_host_rewrites_the_url_and_keeps_the_password(
    api_database: tuple[str, Path], tmp_path: Path
) -> None:
    owner_url, url_file = api_database
    before = httpx.URL(url_file.read_text().strip())
    owner = httpx.URL(owner_url)
    # `localhost` instead of 127.0.0.1: another name for the same server, as faultproxy:15432 is in the overlay
    result = make_api_role(owner_url, url_file, "--url-host", f"localhost:{owner.port}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "written; password kept" in result.stdout
    after = httpx.URL(url_file.read_text().strip())
    assert (after.host, after.port, after.password, after.path) == (
        "localhost",
        owner.port,
        before.password,
        owner.path,
    )
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o400
    assert sql(str(after), "SELECT current_user AS user")[0]["user"] == ROLE
    refused = make_api_role(owner_url, tmp_path / "url", "--url-host", "no-port")
    assert refused.returncode == 2
    assert "expected HOST:PORT" in refused.stderr
    assert not (tmp_path / "url").exists()
    # back to the owner's host and port for the tests after this one
    restored = make_api_role(owner_url, url_file)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert httpx.URL(url_file.read_text().strip()) == before


def test_a_lost_url_file_gets_a_new_password_and_the_old_one_stops_working(
    api_database: tuple[str, Path], tmp_path: Path
) -> None:
    owner_url, url_file = api_database
    old_url = url_file.read_text().strip()
    new_file = tmp_path / "api_database_url"
    result = make_api_role(owner_url, new_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "written; password new" in result.stdout
    new_url = new_file.read_text().strip()
    assert new_url != old_url
    assert sql(new_url, "SELECT current_user AS user")[0]["user"] == ROLE
    with pytest.raises(asyncpg.InvalidPasswordError):
        sql(old_url, "SELECT 1")
    # the module's own file is the URL that works now (for the tests after this one)
    url_file.chmod(0o600)
    url_file.write_text(new_url + "\n")
    url_file.chmod(0o400)


def test_the_owner_itself_is_refused_as_the_api_role(api_database: tuple[str, Path], tmp_path: Path) -> None:
    owner_url, _ = api_database
    result = make_api_role(owner_url, tmp_path / "url", "--role", httpx.URL(owner_url).username)
    assert result.returncode != 0
    assert "other than the owner's" in result.stderr
    assert not (tmp_path / "url").exists()
