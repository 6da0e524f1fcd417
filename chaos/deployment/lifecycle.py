"""`python -m chaos deployment up|down`: the production stack plus the chaos overlay on this machine, as a target.

`deployment_up()` runs

    compose -p PROJECT -f docker-compose.prod.yml -f docker-compose.chaos.yml [CI image overrides] up -d --build

with generated secrets (in compose's environment only) and free loopback ports, waits until the balancer
answers /health/ready with 200, every replica is UP in its rotation (HAProxy's stats CSV) and Prometheus scrapes
every replica, then writes REPORT_DIR/target.toml (the drills' target: URLs, drivers, variable names) and
REPORT_DIR/target.env (mode 0600: the values those names stand for, and the compose secrets).
`deployment_down()` removes every container, network and volume of the project and the two files; it is
idempotent. A Ctrl-C or SIGTERM while `up` runs tears down what was started, and so does any failure.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from chaos.deployment.compose import (
    CHAOS_FILE,
    PROD_FILE,
    SECRET_NAMES,
    ComposeError,
    ComposeProject,
    check_project_name,
    describe_files,
    files_for,
    image_present,
    network_ips,
)
from chaos.deployment.variants import build_release_variants
from chaos.drills.alert_clock import DRILL_FACTOR, DRILL_RULES, PRODUCTION_RULES
from chaos.lifecycle import free_port
from chaos.stack.images import IMAGES, LOCAL_BASE_IMAGE
from conformance.tls import shared_tls_context

Progress = Callable[[str], None]
T = TypeVar("T")

DEFAULT_PROJECT = "rbdeploy"
DEFAULT_REPORT_DIR = Path("reports/deployment")
TARGET_FILE = "target.toml"
ENV_FILE = "target.env"
COMPOSE_LOG = "compose.log"
TARGET_NAME = "local-deployment"
MAX_REPLICAS = 16  # the balancer's server slots (deploy/haproxy/haproxy.cfg)
API_SERVICE = "api"
REPLICA_PORT = 8000
BALANCER_BACKEND = "replicas"
SCRAPE_JOB = "events-api"
PROXIES = {"postgres": "postgres", "redis": "redis"}  # dependency → fault proxy name (docker-compose.chaos.yml)
DEPENDENCY_SERVICES = {"postgres": "postgres", "redis": "redis"}  # dependency → compose service
# The variable names target.toml gives for the credentials (target.env holds their values).
API_KEY_VARIABLE = "RB_TARGET_API_KEY"
DATABASE_URL_VARIABLE = "RB_TARGET_DATABASE_URL"
JWT_SECRET_VARIABLE = "RB_TARGET_JWT_SECRET"  # noqa: S105 - a variable name; for drills that sign tokens
DATABASE_USER = "events"  # POSTGRES_USER / POSTGRES_DB of docker-compose.prod.yml (their defaults)
DATABASE_NAME = "events"
# The first `up` builds four images and installs the service's dependencies; later ones reuse Docker's cache.
UP_TIMEOUT_S = 1800.0
READY_TIMEOUT_S = 240.0
DOWN_TIMEOUT_S = 300.0
DOWN_ATTEMPTS = 3
DOWN_RETRY_PAUSE_S = 2.0
POLL_INTERVAL_S = 0.5
HTTP_TIMEOUT_S = 3.0
PUBLIC_BASE_IMAGES = ("python:3.11-slim", "postgres:15", "redis:7", "debian:bookworm-slim")
LOCAL_BASE_IMAGES = (*(choice.local for choice in IMAGES.values()), LOCAL_BASE_IMAGE)


class DeploymentError(RuntimeError):
    """The deployment could not be brought up or down; the message says what and where to look."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP while `up` runs (SIGINT is KeyboardInterrupt): like Ctrl-C, it tears down."""


@dataclass(frozen=True)
class Ports:
    """The host ports (on 127.0.0.1) the deployment publishes."""

    api: int
    fault_proxy: int
    postgres: int
    prometheus: int
    lb_stats: int

    @classmethod
    def pick(cls) -> Ports:
        """Distinct ports free on 127.0.0.1 now."""
        chosen: list[int] = []
        while len(chosen) < 5:
            port = free_port()
            if port not in chosen:
                chosen.append(port)
        return cls(*chosen)

    def variables(self) -> dict[str, str]:
        """The compose variables that publish them (API_PORT is the production file's, the rest the overlay's)."""
        return {
            "API_PORT": str(self.api),
            "FAULT_PROXY_PORT": str(self.fault_proxy),
            "CHAOS_PG_PORT": str(self.postgres),
            "PROMETHEUS_PORT": str(self.prometheus),
            "LB_STATS_PORT": str(self.lb_stats),
        }


@dataclass(frozen=True)
class Deployment:
    """A deployment that is up: where everything answers and the files that describe it."""

    project: str
    replicas: int
    ports: Ports
    image: str  # the image (tag) the replicas run
    files: tuple[Path, ...]
    target_file: Path
    env_file: Path
    up_s: float
    # The releases the image drills roll out (chaos/deployment/variants.py), and the clock of the alert rules
    # Prometheus evaluates (1: production timing; the drill variant's factor for `--alert-rules drill`).
    candidate_image: str | None = None
    broken_image: str | None = None
    alert_clock_factor: int = 1

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def fault_proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.fault_proxy}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.lb_stats}/stats;csv"

    @property
    def partition_network(self) -> str:
        return f"{self.project}_backend"

    @property
    def probe_network(self) -> str:
        return f"{self.project}_chaos"


# -- up ----------------------------------------------------------------------------------------------------------


def use_ci_images() -> bool:
    """Whether to build on the local stand-ins: yes when every one is present and not every public base is
    (a machine that reaches no registry, after `make docker-prepare`)."""
    if all(image_present(image) for image in PUBLIC_BASE_IMAGES):
        return False
    return all(image_present(image) for image in LOCAL_BASE_IMAGES)


def generate_secrets() -> dict[str, str]:
    """The production file's three secrets: URL-safe (POSTGRES_PASSWORD goes into a URL as it is)."""
    return {
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "API_KEY": secrets.token_urlsafe(32),
        "JWT_SECRET": secrets.token_urlsafe(48),
    }


def deployment_up(
    replicas: int = 2,
    project: str = DEFAULT_PROJECT,
    report_dir: Path = DEFAULT_REPORT_DIR,
    ci_images: bool | None = None,
    progress: Progress = print,
    alert_rules: Literal["production", "drill"] = "production",
    release_variants: bool = True,
) -> Deployment:
    """Bring the deployment up and write its target files (see the module docstring); tears down on failure.

    `alert_rules`: which rules its Prometheus evaluates — the shipped production file, or the drill variant
    (every duration divided by chaos.drills.alert_clock.DRILL_FACTOR) so alerts fire within a short drill.
    `release_variants`: build the candidate and the broken release of its image for the image drills."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise DeploymentError(f"replicas must be between 1 and {MAX_REPLICAS} (the balancer's slots), not {replicas}")
    check_project_name(project)
    started = time.monotonic()
    ci = use_ci_images() if ci_images is None else ci_images
    files = files_for(ci)
    generated = generate_secrets()
    ports = Ports.pick()
    rules, factor = (DRILL_RULES.name, DRILL_FACTOR) if alert_rules == "drill" else (PRODUCTION_RULES.name, 1)
    variables = {**generated, **ports.variables(), "API_REPLICAS": str(replicas), "PROMETHEUS_RULES": rules}
    compose = ComposeProject(project, files, variables)
    existing = compose.resources()
    if existing:
        raise DeploymentError(
            f"compose project {project} already has {len(existing)} containers/networks/volumes "
            f"({', '.join(existing[:4])}{', ...' if len(existing) > 4 else ''}): take it down first with "
            f"`python -m chaos deployment down --project {project}`, or pick another --project"
        )
    report_dir.mkdir(parents=True, exist_ok=True)
    log = report_dir / COMPOSE_LOG
    log.write_text("")
    progress(
        f"deployment {project}: {replicas} replicas, {'locally built' if ci else 'public'} base images; "
        f"building and starting (compose output: {log})"
    )
    with _terminate_raises():
        try:
            compose.run("up", "-d", "--build", timeout=UP_TIMEOUT_S, log=log)
            progress(f"deployment {project}: containers started in {time.monotonic() - started:.1f}s; waiting for them")
            replicas_seen = wait_until_serving(compose, ports, replicas, progress=progress)
            image = str(replicas_seen[0]["Config"]["Image"])
            candidate = broken = None
            if release_variants:
                candidate, broken = build_release_variants(image)
                progress(f"deployment {project}: release images for the image drills: {candidate}, {broken}")
            deployment = Deployment(
                project=project,
                replicas=replicas,
                ports=ports,
                image=image,
                files=files,
                target_file=report_dir / TARGET_FILE,
                env_file=report_dir / ENV_FILE,
                up_s=time.monotonic() - started,
                candidate_image=candidate,
                broken_image=broken,
                alert_clock_factor=factor,
            )
            write_env_file(deployment.env_file, env_values(deployment, generated))
            write_text_file(deployment.target_file, render_target(deployment))
        except BaseException as error:
            progress(f"deployment {project}: {_reason(error)}; tearing down what was started")
            with _shielded(reraise=False):
                try:
                    _down(compose, log, progress)
                except (ComposeError, DeploymentError) as teardown:
                    progress(f"deployment {project}: TEARDOWN FAILED, remove it by hand: {teardown}")
            (report_dir / TARGET_FILE).unlink(missing_ok=True)
            (report_dir / ENV_FILE).unlink(missing_ok=True)
            if isinstance(error, ComposeError):
                raise DeploymentError(f"{error}\n(compose output: {log})") from None
            raise
    progress(summary(deployment))
    return deployment


def _reason(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(error, Interrupted):
        return f"interrupted ({error})"
    return f"failed ({type(error).__name__})"


def wait_until_serving(
    compose: ComposeProject,
    ports: Ports,
    replicas: int,
    *,
    progress: Progress = print,
    timeout_s: float = READY_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Wait until `replicas` api containers run, the balancer answers /health/ready 200, every replica is UP in
    its rotation and Prometheus has `up == 1` for each; returns the replicas' `docker inspect`."""
    deadline = time.monotonic() + timeout_s
    edge, chaos = f"{compose.name}_edge", f"{compose.name}_chaos"
    stats_url = f"http://127.0.0.1:{ports.lb_stats}/stats;csv"
    prometheus_url = f"http://127.0.0.1:{ports.prometheus}"
    base_url = f"http://127.0.0.1:{ports.api}"
    reported: set[str] = set()
    state: dict[str, object] = {}
    with httpx.Client(verify=shared_tls_context(), timeout=HTTP_TIMEOUT_S) as client:
        while True:
            running = [c for c in compose.inspect(API_SERVICE, all=False) if c["State"]["Status"] == "running"]
            ips = [network_ips(container) for container in running]
            edge_ips = {addresses.get(edge) for addresses in ips} - {None}
            chaos_ips = {addresses.get(chaos) for addresses in ips} - {None}
            in_rotation: set[str] = _safely(lambda: up_servers(client, stats_url), set())
            scraped: set[str] = _safely(lambda: scraped_replicas(client, prometheus_url), set())
            ready: int | None = _safely(lambda: client.get(f"{base_url}/health/ready").status_code, None)
            state = {
                "replicas running": f"{len(running)}/{replicas}",
                "balancer /health/ready": ready,
                "in rotation": f"{len(in_rotation & edge_ips)}/{replicas}",
                "scraped by Prometheus": f"{len(scraped & chaos_ips)}/{replicas}",
            }
            checks = {
                "replicas running": len(running) == replicas and len(edge_ips) == len(chaos_ips) == replicas,
                "balancer ready": ready == 200,
                "every replica in the balancer's rotation": len(running) == replicas and in_rotation == edge_ips,
                "Prometheus scrapes every replica": len(running) == replicas and scraped == chaos_ips,
            }
            for name, passed in checks.items():
                if passed and name not in reported:
                    reported.add(name)
                    progress(f"deployment {compose.name}: {name}")
            if all(checks.values()):
                return running
            if time.monotonic() > deadline:
                listing = compose.run("ps", timeout=60, check=False).stdout
                logs = compose.run("logs", "--no-color", "--tail", "30", timeout=60, check=False).stdout
                raise DeploymentError(
                    f"deployment {compose.name} not serving after {timeout_s:.0f}s: "
                    + ", ".join(f"{key} {value}" for key, value in state.items())
                    + f"\n{listing}\n{logs[-4000:]}"
                )
            time.sleep(POLL_INTERVAL_S)


def _safely(probe: Callable[[], T], otherwise: T) -> T:
    """A readiness probe's answer, or `otherwise` while the thing probed does not answer (yet)."""
    try:
        return probe()
    except (httpx.HTTPError, ValueError, KeyError):
        return otherwise


def balancer_servers(client: httpx.Client, stats_url: str, backend: str = BALANCER_BACKEND) -> list[dict[str, str]]:
    """The server rows of `backend` in HAProxy's stats CSV (svname, status, addr, check_status, ...)."""
    response = client.get(stats_url)
    response.raise_for_status()
    text = response.text.removeprefix("# ")
    rows = csv.DictReader(io.StringIO(text))
    return [row for row in rows if row.get("pxname") == backend and row.get("svname") not in ("BACKEND", "FRONTEND")]


def up_servers(client: httpx.Client, stats_url: str, backend: str = BALANCER_BACKEND) -> set[str]:
    """The IP addresses of the servers of `backend` the balancer has UP (in its rotation)."""
    return {
        row["addr"].rpartition(":")[0]
        for row in balancer_servers(client, stats_url, backend)
        if row.get("status") == "UP" and row.get("addr")
    }


def scraped_replicas(client: httpx.Client, prometheus_url: str) -> set[str]:
    """The IP addresses of the replicas whose last scrape succeeded (`up{job="events-api"} == 1`)."""
    response = client.get(f"{prometheus_url}/api/v1/query", params={"query": f'up{{job="{SCRAPE_JOB}"}} == 1'})
    response.raise_for_status()
    results: list[dict[str, Any]] = response.json()["data"]["result"]
    return {str(result["metric"]["instance"]).rpartition(":")[0] for result in results}


# -- the target files ---------------------------------------------------------------------------------------------


def database_url(password: str, port: int) -> str:
    """The durability check's URL: the schema owner through the published port (a SELECT of what was acked)."""
    return f"postgresql://{DATABASE_USER}:{password}@127.0.0.1:{port}/{DATABASE_NAME}"


def env_values(deployment: Deployment, generated: Mapping[str, str]) -> dict[str, str]:
    """target.env: the values of the variables target.toml names, then the compose secrets (`down` needs
    them: compose refuses to read the files without them) and the ports and replica count they were used with."""
    return {
        API_KEY_VARIABLE: generated["API_KEY"],
        DATABASE_URL_VARIABLE: database_url(generated["POSTGRES_PASSWORD"], deployment.ports.postgres),
        JWT_SECRET_VARIABLE: generated["JWT_SECRET"],
        **{name: generated[name] for name in SECRET_NAMES},
        **deployment.ports.variables(),
        "API_REPLICAS": str(deployment.replicas),
    }


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string (same escapes; non-ASCII as \uXXXX).
    return json.dumps(value)


def _inline_table(mapping: Mapping[str, str]) -> str:
    return "{ " + ", ".join(f"{key} = {_toml_string(value)}" for key, value in mapping.items()) + " }"


def render_target(deployment: Deployment) -> str:
    """target.toml (the schema is the lead's, chaos/targets/spec.py; docs/DEPLOYMENT.md describes every key)."""
    files = " + ".join(path.name for path in deployment.files if path in (PROD_FILE, CHAOS_FILE))
    description = f"{files}, project {deployment.project}, {deployment.replicas} replicas"
    lines = [
        "# Written by `python -m chaos deployment up` (chaos/deployment/), removed by `... deployment down`.",
        f"# Compose: compose -p {deployment.project} {describe_files(deployment.files)}",
        f"# The credentials below are environment variable names; their values are in {ENV_FILE} beside this file:",
        f"#   set -a; . {deployment.env_file}; set +a",
        f"name = {_toml_string(TARGET_NAME)}",
        'kind = "deployment"',
        f"description = {_toml_string(description)}",
        f"base_url = {_toml_string(deployment.base_url)}",
        f"prometheus_url = {_toml_string(deployment.prometheus_url)}",
        f"alert_clock_factor = {deployment.alert_clock_factor}",
        "",
        "[credentials]",
        f"api_key = {_toml_string(API_KEY_VARIABLE)}",
        f"database_url = {_toml_string(DATABASE_URL_VARIABLE)}",
        f"jwt_secret = {_toml_string(JWT_SECRET_VARIABLE)}",
        "",
        "[drivers.toxiproxy]",
        f"api_url = {_toml_string(deployment.fault_proxy_url)}",
        f"proxies = {_inline_table(PROXIES)}",
        "",
        "[drivers.docker]",
        f"project = {_toml_string(deployment.project)}",
        f"service = {_toml_string(API_SERVICE)}",
        f"dependencies = {_inline_table(DEPENDENCY_SERVICES)}",
        f"partition_network = {_toml_string(deployment.partition_network)}",
        f"probe_network = {_toml_string(deployment.probe_network)}",
        f"replica_port = {REPLICA_PORT}",
        f"balancer_stats_url = {_toml_string(deployment.stats_url)}",
        f"balancer_backend = {_toml_string(BALANCER_BACKEND)}",
        f"image = {_toml_string(deployment.image)}",
        *([f"candidate_image = {_toml_string(deployment.candidate_image)}"] if deployment.candidate_image else []),
        *([f"broken_image = {_toml_string(deployment.broken_image)}"] if deployment.broken_image else []),
    ]
    return "\n".join(lines) + "\n"


def write_text_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `path` atomically with `mode` (from its first byte: a secret file is never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(descriptor, mode)  # whatever the umask
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """NAME=value lines a POSIX shell sources (`set -a; . FILE; set +a`), mode 0600."""
    for name, value in values.items():
        if not name.isidentifier() or any(character in value for character in "\n'\"\\$` "):
            raise DeploymentError(f"{name}: not a value a shell can source unquoted")
    header = "# Secrets of a local deployment (python -m chaos deployment up). Load: set -a; . THIS_FILE; set +a\n"
    write_text_file(path, header + "".join(f"{name}={value}\n" for name, value in values.items()), mode=0o600)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, separator, value = line.partition("=")
        if separator and not line.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def summary(deployment: Deployment) -> str:
    env_file = deployment.env_file
    rows = [
        ("API, through the balancer", deployment.base_url),
        ("balancer stats", f"http://127.0.0.1:{deployment.ports.lb_stats}/stats"),
        ("Prometheus", deployment.prometheus_url),
        ("fault proxy (Toxiproxy API)", f"{deployment.fault_proxy_url}  proxies: {', '.join(PROXIES.values())}"),
        ("PostgreSQL (schema owner)", f"127.0.0.1:{deployment.ports.postgres}  (${DATABASE_URL_VARIABLE})"),
        ("target file", str(deployment.target_file)),
        ("secrets (mode 0600)", str(env_file)),
    ]
    width = max(len(label) for label, _ in rows)
    table = "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)
    return (
        f"deployment {deployment.project} up in {deployment.up_s:.1f}s: {deployment.replicas} replicas of "
        f"{deployment.image}\n{table}\n"
        f"Load the secrets into a shell:  set -a; . {env_file}; set +a\n"
        f'Then:  curl -s -H "X-API-Key: ${API_KEY_VARIABLE}" {deployment.base_url}/api/v1/events\n'
        f"Drills:  python -m chaos run all --target {deployment.target_file}\n"
        f"Tear down:  python -m chaos deployment down --project {deployment.project} "
        f"--report-dir {env_file.parent}"
    )


# -- down ------------------------------------------------------------------------------------------------------------


def deployment_down(
    project: str = DEFAULT_PROJECT, report_dir: Path = DEFAULT_REPORT_DIR, progress: Progress = print
) -> None:
    """Remove every container, network and volume of `project` and its target files; nothing there is fine."""
    check_project_name(project)
    env_file = report_dir / ENV_FILE
    saved = read_env_file(env_file) if env_file.exists() else {}
    # Compose refuses to read the files without the secrets, whose values `down` does not use: the saved ones,
    # or stand-ins when up never got to write them (it was killed).
    variables = {name: saved.get(name) or f"unused-by-down-{secrets.token_hex(8)}" for name in SECRET_NAMES}
    compose = ComposeProject(project, files_for(False), variables)
    with _shielded():
        _down(compose, report_dir / COMPOSE_LOG if report_dir.is_dir() else None, progress)
    (report_dir / TARGET_FILE).unlink(missing_ok=True)
    env_file.unlink(missing_ok=True)


def _down(compose: ComposeProject, log: Path | None, progress: Progress) -> None:
    """`down -v --remove-orphans` until nothing of the project is left. More than one round when an `up` was
    killed: the engine still completes the create and start requests it had accepted from the killed compose,
    so a container can appear after the first round listed the project (and then holds its networks)."""
    started = time.monotonic()
    for attempt in range(1, DOWN_ATTEMPTS + 1):
        result = compose.run("down", "-v", "--remove-orphans", timeout=DOWN_TIMEOUT_S, log=log, check=False)
        left = compose.resources()
        if not left:
            break
        if attempt == DOWN_ATTEMPTS:
            raise DeploymentError(
                f"compose down left {', '.join(left)} of project {compose.name}:\n{result.stderr[-2000:]}"
            )
        progress(f"deployment {compose.name}: {len(left)} containers/networks/volumes appeared or stayed; again")
        time.sleep(DOWN_RETRY_PAUSE_S)
    took = time.monotonic() - started
    progress(f"deployment {compose.name}: down (its containers, networks and volumes removed) in {took:.1f}s")


# -- signals -------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) raise Interrupted, as SIGINT raises KeyboardInterrupt, so `up`
    tears down on any of them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _shielded(*, reraise: bool = True) -> Iterator[None]:
    """Teardown runs to its end (it is bounded by DOWN_TIMEOUT_S): SIGINT and SIGTERM wait until it is done,
    then raise (KeyboardInterrupt, Interrupted) when `reraise`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, remember) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if reraise and received:
        if received[-1] == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signal.Signals(received[-1]).name)
