"""The target file: what a drill run is pointed at, read from TOML and checked before anything runs.

A target names where the API answers (through its load balancer), where credentials come from (environment
variable names, never values), the Prometheus that evaluates its alert rules, and the fault drivers it offers:

    name = "staging"
    kind = "deployment"                  # or "throwaway" (a stack the harness starts itself: backend local|docker)
    base_url = "https://127.0.0.1:8443"
    prometheus_url = "http://127.0.0.1:9090"
    alert_clock_factor = 1               # the rules' clock: 1 = production values, 20 = the drill variant

    [credentials]
    api_key = "STAGING_API_KEY"          # variable names
    database_url = "STAGING_EVENTS_RO_URL"

    [drivers.toxiproxy]
    api_url = "http://127.0.0.1:8474"
    proxies = { postgres = "events-db", redis = "ratelimit" }

    [drivers.docker]
    project = "staging"
    ...

Every key is checked: an unknown key, a wrong type or a value given where a variable name belongs is a
`TargetError` naming the file and the key. docs/DEPLOYMENT.md documents every key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from chaos.stack.base import DEPENDENCIES, Capability, Dependency

TargetKind = Literal["deployment", "throwaway"]
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
MAX_FILE_BYTES = 64 * 1024  # a target file is a page of settings, not data
MAX_REPLICAS = 16  # the balancer's slots (deploy/haproxy/haproxy.cfg)


class TargetError(ValueError):
    """The target file is unreadable or wrong; the message names the file and the key."""


@dataclass(frozen=True)
class ToxiproxyDriverSpec:
    api_url: str
    proxies: dict[Dependency, str]  # dependency → proxy name
    leases: bool = True  # false for a real Toxiproxy: its faults stay until removed (no self-expiry)


@dataclass(frozen=True)
class DockerDriverSpec:
    project: str
    service: str = "api"
    dependencies: dict[Dependency, str] = field(default_factory=dict)  # dependency → compose service
    partition_network: str | None = None
    probe_network: str | None = None
    replica_port: int = 8000
    balancer_stats_url: str | None = None
    balancer_backend: str = "replicas"
    image: str | None = None  # the release the replicas run in steady state (default: what they run)
    candidate_image: str | None = None  # the next release, for rolling-deploy
    broken_image: str | None = None  # a release known to be broken, for release-bad-image
    socket: str = "/var/run/docker.sock"


@dataclass(frozen=True)
class Credentials:
    api_key: str  # variable names
    database_url: str | None = None
    jwt_secret: str | None = None


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: TargetKind
    source: Path | None  # the file it was read from; None for a built-in target
    description: str = ""
    backend: Literal["local", "docker"] | None = None  # throwaway targets
    base_url: str | None = None
    prometheus_url: str | None = None
    alert_clock_factor: int = 1  # how much faster than production the target's alert rules run
    credentials: Credentials | None = None
    toxiproxy: ToxiproxyDriverSpec | None = None
    docker: DockerDriverSpec | None = None

    def offers(self) -> frozenset[Capability]:
        """What drills may ask of a deployment target, from its drivers (throwaway targets: their backend's)."""
        offered: set[Capability] = set()
        if self.toxiproxy is not None and set(self.toxiproxy.proxies) == set(DEPENDENCIES):
            offered.add("proxy-faults")
        if self.docker is not None:
            offered.add("replicas")
            if self.docker.candidate_image and self.docker.broken_image:
                offered.add("image-deploy")
            if set(self.docker.dependencies) == set(DEPENDENCIES):
                offered.add("dependency-process")
            if self.docker.partition_network:
                offered.add("replica-partition")
            if self.docker.balancer_stats_url:
                offered.add("balancer-view")
        return frozenset(offered)

    def secret(self, which: Literal["api_key", "database_url", "jwt_secret"]) -> str | None:
        """A credential's value from the environment; a named variable that is unset is an error."""
        if self.credentials is None:
            return None
        variable = getattr(self.credentials, which)
        if variable is None:
            return None
        value = os.environ.get(variable)
        if not value:
            raise TargetError(
                f"target {self.name}: credentials.{which} names the environment variable {variable}, which is not "
                "set (export it, or load the target's env file with --env-file)"
            )
        return value


# -- reading ---------------------------------------------------------------------------------------------------


class _Table:
    """One TOML table with the keys read so far, so unknown keys can be refused by name."""

    def __init__(self, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise TargetError(f"{where}: must be a table")
        self.where = where
        self.data: dict[str, Any] = data
        self.read: set[str] = set()

    def _get(self, key: str, kind: type | tuple[type, ...], required: bool) -> Any:
        self.read.add(key)
        if key not in self.data:
            if required:
                raise TargetError(f"{self.where}: `{key}` is required")
            return None
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise TargetError(f"{self.where}: `{key}` has the wrong type ({type(value).__name__})")
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key, str, required)
        if value is not None and not value.strip():
            raise TargetError(f"{self.where}: `{key}` is empty")
        return value  # type: ignore[no-any-return]

    def url(self, key: str, *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise TargetError(f"{self.where}: `{key}` must be an http(s) URL, got {value!r}")
            value = value.rstrip("/")
        return value

    def number(self, key: str, *, low: float, high: float) -> float | None:
        value = self._get(key, (int, float), False)
        if value is not None and not low <= value <= high:
            raise TargetError(f"{self.where}: `{key}` must be between {low:g} and {high:g}, got {value}")
        return None if value is None else float(value)

    def variable(self, key: str, *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is not None and not ENV_NAME.match(value):
            raise TargetError(
                f"{self.where}: `{key}` must name an environment variable (A-Z, 0-9, _), not hold a value; "
                "credentials never go into a target file"
            )
        return value

    def table(self, key: str) -> _Table | None:
        self.read.add(key)
        return None if key not in self.data else _Table(f"{self.where}.{key}", self.data[key])

    def dependencies(self, key: str) -> dict[Dependency, str]:
        table = self.table(key)
        if table is None:
            return {}
        mapping: dict[Dependency, str] = {}
        for dependency in DEPENDENCIES:
            name = table.text(dependency)
            if name is not None:
                mapping[dependency] = name
        table.done()
        return mapping

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise TargetError(f"{self.where}: unknown key(s) {', '.join(unknown)} (docs/DEPLOYMENT.md lists them)")


def parse_target(data: dict[str, Any], source: Path) -> TargetSpec:
    top = _Table(str(source), data)
    name = top.text("name", required=True)
    kind = top.text("kind", required=True)
    assert name is not None
    if kind not in ("deployment", "throwaway"):
        raise TargetError(f"{source}: `kind` must be deployment or throwaway, got {kind!r}")
    description = top.text("description") or ""
    if kind == "throwaway":
        backend = top.text("backend", required=True)
        if backend not in ("local", "docker"):
            raise TargetError(f"{source}: `backend` must be local or docker, got {backend!r}")
        top.done()
        return TargetSpec(name, "throwaway", source, description, backend=backend)  # type: ignore[arg-type]
    base_url = top.url("base_url", required=True)
    prometheus_url = top.url("prometheus_url")
    factor_value = top._get("alert_clock_factor", int, False)
    if factor_value is not None and not 1 <= factor_value <= 3600:
        raise TargetError(f"{source}: `alert_clock_factor` must be between 1 and 3600, got {factor_value}")
    factor = factor_value or 1
    credentials_table = top.table("credentials")
    if credentials_table is None:
        raise TargetError(f"{source}: [credentials] is required (api_key = the variable holding the API key)")
    api_key = credentials_table.variable("api_key", required=True)
    assert api_key is not None
    credentials = Credentials(
        api_key, credentials_table.variable("database_url"), credentials_table.variable("jwt_secret")
    )
    credentials_table.done()
    toxiproxy = docker = None
    drivers = top.table("drivers")
    if drivers is not None:
        toxiproxy_table = drivers.table("toxiproxy")
        if toxiproxy_table is not None:
            api_url = toxiproxy_table.url("api_url", required=True)
            assert api_url is not None
            leases = toxiproxy_table._get("leases", bool, False)
            toxiproxy = ToxiproxyDriverSpec(
                api_url, toxiproxy_table.dependencies("proxies"), True if leases is None else leases
            )
            toxiproxy_table.done()
        docker_table = drivers.table("docker")
        if docker_table is not None:
            project = docker_table.text("project", required=True)
            assert project is not None
            port = docker_table.number("replica_port", low=1, high=65535)
            docker = DockerDriverSpec(
                project=project,
                service=docker_table.text("service") or "api",
                dependencies=docker_table.dependencies("dependencies"),
                partition_network=docker_table.text("partition_network"),
                probe_network=docker_table.text("probe_network"),
                replica_port=int(port) if port is not None else 8000,
                balancer_stats_url=docker_table.url("balancer_stats_url"),
                balancer_backend=docker_table.text("balancer_backend") or "replicas",
                image=docker_table.text("image"),
                candidate_image=docker_table.text("candidate_image"),
                broken_image=docker_table.text("broken_image"),
                socket=docker_table.text("socket") or "/var/run/docker.sock",
            )
            docker_table.done()
        drivers.done()
    top.done()
    return TargetSpec(
        name,
        "deployment",
        source,
        description,
        base_url=base_url,
        prometheus_url=prometheus_url,
        alert_clock_factor=factor,
        credentials=credentials,
        toxiproxy=toxiproxy,
        docker=docker,
    )


def read_target(path: Path) -> TargetSpec:
    """Read and check a target file."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TargetError(f"{path}: cannot read the target file: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TargetError(f"{path}: {len(raw)} bytes; a target file is at most {MAX_FILE_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise TargetError(f"{path}: not a TOML file: {error}") from None
    return parse_target(data, path)


def load_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (a target's credentials, as `chaos deployment up` writes them) into os.environ.

    Refused unless only its owner can read it: it holds secrets. Values are never printed."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise TargetError(f"{path}: cannot read the env file: {error.strerror or error}") from None
    if mode & 0o077:
        raise TargetError(f"{path}: readable by others (mode {mode & 0o777:o}); chmod 600 it, it holds secrets")
    loaded: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not ENV_NAME.match(name):
            raise TargetError(f"{path}:{number}: expected NAME=value")
        loaded[name] = value.strip().strip("'\"")
    os.environ.update(loaded)
    return loaded
