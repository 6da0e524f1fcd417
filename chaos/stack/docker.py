"""The stack in Docker containers (Testcontainers): the same `StackBackend` as `LocalStack`, other plumbing.

    with DockerStack() as stack:
        stack.api_url                       # the service container, published on 127.0.0.1
        stack.proxy("postgres").add_toxic(type="latency", attributes={"latency": 300})
        stack.pause_dependency("redis")     # docker pause: every process frozen, connections stay open
        stack.restart_service(env_overrides={"INGEST_MAX_BATCH_ITEMS": "10"})   # a rollout: a new container

On one user-defined network (`rb-stack-<id>`), each container reachable by its alias:

    postgres   postgres:15 (or the local stand-in), database "events"
    redis      redis:7 (or the local stand-in), no persistence
    proxy      the service image running `python -m chaos.proxy` (Toxiproxy's API on 8474) with the proxies
               "postgres" (0.0.0.0:15432 -> postgres:5432) and "redis" (0.0.0.0:16379 -> redis:6379)
    api        the service image: `python -m service --bind 0.0.0.0:8000`, DATABASE_URL and REDIS_URL through
               the proxy; migrated first by a one-shot `python -m alembic upgrade head` container

Every container publishes its ports on 127.0.0.1 only, on ports chosen when the stack starts (kept when a
container is restarted). `endpoints` are host URLs; `service_env` is what the service container sees (its
DATABASE_URL names proxy:15432). Images come from `chaos.stack.images` (public where present, else the
stand-ins `scripts/prepare_docker.py` builds); the service image is built from the repo's Dockerfile unless
one is given. Containers and the network carry labels naming the stack and its owning process: `stop()` (also
at interpreter exit) removes them, and every new stack first removes those of owners that died (with their
temporary directories).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import docker
import docker.errors
import requests
from docker.models.containers import Container
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from chaos.lifecycle import ServerError, answers_ok, free_port, log_tail
from chaos.proxy.client import ToxiproxyClient
from chaos.stack import images
from chaos.stack.base import (
    DATABASE_NAME,
    DEPENDENCIES,
    Dependency,
    Progress,
    StackBackend,
    StackEndpoints,
    live_stacks,
)
from chaos.stack.migrations import REPO_ROOT
from chaos.stack.service import generated_credentials

LABEL_STACK = "io.executable-runbook.stack"
LABEL_OWNER = "io.executable-runbook.owner"
LABEL_ROLE = "io.executable-runbook.role"
LABEL_DIRECTORY = "io.executable-runbook.directory"  # the stack's temporary directory on the owner's host
DIRECTORY_PREFIX = "rb-docker-stack-"
POSTGRES_USER = "postgres"
API_PORT = 8000
PROXY_API_PORT = 8474
PROXY_PORTS: dict[Dependency, int] = {"postgres": 15432, "redis": 16379}
DEPENDENCY_PORTS: dict[Dependency, int] = {"postgres": 5432, "redis": 6379}
READY_TIMEOUT_S = 60.0
SERVICE_LIVE_TIMEOUT_S = 45.0
# The service gets DRAIN_DELAY_S plus hypercorn's graceful_timeout (10 s) after SIGTERM, then SIGKILL.
SERVICE_STOP_TIMEOUT_S = 25
DEPENDENCY_STOP_TIMEOUT_S = 10
NO_HEALTHCHECK = {"test": ["NONE"]}

log = logging.getLogger(__name__)


class DockerUnavailable(ServerError):
    """No Docker engine answers, or an image the stack needs is missing; the message says what to do."""


def docker_client(timeout: int = 60) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as error:
        raise DockerUnavailable(
            f"no Docker engine answers ({error}); start one, or run `scripts/prepare_docker.py` as root"
        ) from None
    return client


def _image_present(client: docker.DockerClient) -> Callable[[str], bool]:
    def present(image: str) -> bool:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    return present


def docker_status() -> tuple[bool, str]:
    """Whether the Docker backend can start here without pulling anything, and why (not)."""
    try:
        client = docker_client(timeout=5)
    except DockerUnavailable as error:
        return False, str(error)
    try:
        present = _image_present(client)
        missing = [images.resolve(role, present) for role in ("postgres", "redis")]
        missing = [image for image in missing if not present(image)]
        service = os.environ.get(images.SERVICE_IMAGE_ENV)
        if service:
            if not present(service):
                missing.append(service)
        elif not images.available("python", present):
            missing.append(images.resolve("python", present))
    finally:
        client.close()
    if missing:
        return False, f"the Docker engine answers but lacks {', '.join(missing)} (run scripts/prepare_docker.py)"
    return True, "a Docker engine answers and the images are present"


# -- ownership labels, and removing what dead owners left ---------------------------------------------------


def _process_start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_label() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{_process_start_time(pid) or '?'}"


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition("/")
    pid_text, _, started = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # not ours to judge
    return _process_start_time(int(pid_text)) == started


def remove_orphans(client: docker.DockerClient) -> int:
    """Remove containers and networks of stacks whose owning process is gone, and their temporary directories;
    return how many containers and networks."""
    removed = 0
    directories: set[str] = set()
    for container in client.containers.list(all=True, filters={"label": LABEL_OWNER}):
        if not _owner_alive(container.labels.get(LABEL_OWNER, "")):
            directories.add(container.labels.get(LABEL_DIRECTORY, ""))
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True, v=True)
                removed += 1
    for network in client.networks.list(filters={"label": LABEL_OWNER}):
        labels = network.attrs.get("Labels") or {}
        if not _owner_alive(labels.get(LABEL_OWNER, "")):
            directories.add(labels.get(LABEL_DIRECTORY, ""))
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
                removed += 1
    for directory in filter(None, directories):
        path = Path(directory)
        # Only what a DockerStack made: a directory of ours, straight under this machine's temporary directory.
        if path.name.startswith(DIRECTORY_PREFIX) and path.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(path, ignore_errors=True)
    return removed


# -- the service container ---------------------------------------------------------------------------------


class _LogFollower:
    """Appends a container's output (stdout and stderr) to a file while the container lives."""

    def __init__(self, container: Container, path: Path) -> None:
        self._container = container
        self._path = path
        self._stream: Any = None
        self._thread = threading.Thread(target=self._follow, name=f"logs-{container.name}", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException, OSError, ValueError):
            self._stream = self._container.logs(stream=True, follow=True, stdout=True, stderr=True)
            with self._path.open("ab") as output:
                for chunk in self._stream:
                    output.write(chunk)
                    output.flush()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)  # the stream ends when the container stops
        if self._thread.is_alive() and self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
            self._thread.join(timeout)


class DockerService:
    """The service's container: what `LocalStack.service` (a `ServiceProcess`) offers, for a container."""

    def __init__(self, container: DockerContainer, *, base_url: str, log_path: Path) -> None:
        self.container = container
        self.base_url = base_url
        self.log_path = log_path
        self._logs: _LogFollower | None = None

    @property
    def _wrapped(self) -> Container:
        return self.container.get_wrapped_container()

    def start(self) -> Self:
        self.container.start()
        self._logs = _LogFollower(self._wrapped, self.log_path)
        self.wait_live()
        return self

    @property
    def id(self) -> str:
        return self.container.get_container_id()

    @property
    def pid(self) -> int | None:
        """The supervisor's process id on this host (its workers are its children)."""
        with contextlib.suppress(docker.errors.NotFound):
            self._wrapped.reload()
            pid = int(self._wrapped.attrs["State"]["Pid"])
            return pid or None
        return None

    @property
    def running(self) -> bool:
        with contextlib.suppress(docker.errors.NotFound):
            self._wrapped.reload()
            return bool(self._wrapped.status == "running")
        return False

    def wait_live(self, timeout: float = SERVICE_LIVE_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if answers_ok(f"{self.base_url}/health/live"):
                return
            if not self.running:
                raise ServerError(f"the service container exited:\n{self._container_log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"the service did not come up within {timeout}s:\n{self._container_log_tail()}")
            time.sleep(0.1)

    def _container_log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
            return bytes(self._wrapped.logs(tail=lines)).decode(errors="replace")
        return self.log_tail(lines)

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def terminate(self) -> None:
        """SIGTERM to the service, as an orchestrator sends it: readiness drains, in-flight requests finish."""
        with contextlib.suppress(docker.errors.APIError):
            self._wrapped.kill(signal="SIGTERM")

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None when the container still runs after `timeout` seconds."""
        try:
            result = self._wrapped.wait(timeout=timeout)
        except (requests.RequestException, docker.errors.NotFound):
            return None
        return int(result["StatusCode"])

    def stop(self, timeout: int = SERVICE_STOP_TIMEOUT_S) -> None:
        """SIGTERM, SIGKILL after `timeout`, then remove the container."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._wrapped.stop(timeout=timeout)
        if self._logs is not None:
            self._logs.stop()
            self._logs = None
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.container.stop()  # testcontainers' stop removes the container (and closes its client)


# -- the stack ---------------------------------------------------------------------------------------------


class DockerStack(StackBackend):
    """PostgreSQL, Redis, the fault proxy and the service as containers on their own Docker network."""

    def __init__(
        self,
        *,
        workers: int = 1,
        api_port: int | None = None,
        proxy_api_port: int | None = None,
        service_env: Mapping[str, str] | None = None,
        postgres_image: str | None = None,
        redis_image: str | None = None,
        service_image: str | None = None,
        python_image: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        """`api_port` / `proxy_api_port` None pick free ports on 127.0.0.1. Images default to
        `chaos.stack.images.resolve`; `service_image` None builds the repo's Dockerfile (on `python_image`) as
        `chaos.stack.images.SERVICE_IMAGE` (Docker's cache makes an unchanged tree a no-op), and a given
        `service_image` (or RB_SERVICE_IMAGE) is used as it is."""
        self.workers = workers
        self.api_port = api_port
        self.proxy_api_port = proxy_api_port
        self.extra_env = dict(service_env or {})
        self.postgres_image = postgres_image
        self.redis_image = redis_image
        self.service_image = service_image or os.environ.get(images.SERVICE_IMAGE_ENV) or None
        self.python_image = python_image
        self._progress = progress or (lambda message: None)
        self.id = uuid.uuid4().hex[:10]
        self.directory: Path | None = None
        self._started_at = 0.0
        self._resources = contextlib.ExitStack()
        self._client: docker.DockerClient | None = None
        self._network: Network | None = None
        self._containers: dict[str, DockerContainer] = {}
        self._service: DockerService | None = None
        self._service_env: dict[str, str] = {}
        self._service_image_name = ""
        self._endpoints: StackEndpoints | None = None
        self._ports: dict[str, int] = {}
        self._labels = {LABEL_STACK: self.id, LABEL_OWNER: _owner_label()}

    # -- lifecycle -------------------------------------------------------------------------------------
    def _start(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX))
        self.directory = directory
        self._resources.callback(shutil.rmtree, directory, True)
        self._labels[LABEL_DIRECTORY] = str(directory)
        client = docker_client()
        self._client = client
        self._resources.callback(client.close)
        orphans = remove_orphans(client)
        if orphans:
            self._step(f"removed {orphans} container(s)/network(s) left by stacks whose process died")
        self._configure_reaper()

        present = _image_present(client)
        postgres_image = self.postgres_image or images.resolve("postgres", present)
        redis_image = self.redis_image or images.resolve("redis", present)
        service_image = self._service_image(client, present)

        network = Network(docker_network_kw={"labels": dict(self._labels)})
        network.name = f"rb-stack-{self.id}"
        network.create()
        self._network = network
        self._resources.callback(self._remove_network)
        self._step(f"network {network.name}")

        password = secrets.token_urlsafe(18)
        postgres = self._container(
            "postgres",
            postgres_image,
            env={"POSTGRES_USER": POSTGRES_USER, "POSTGRES_PASSWORD": password, "POSTGRES_DB": DATABASE_NAME},
            ports={DEPENDENCY_PORTS["postgres"]: None},
        )
        redis = self._container(
            "redis",
            redis_image,
            command=["redis-server", "--save", "", "--appendonly", "no"],
            ports={DEPENDENCY_PORTS["redis"]: None},
        )
        postgres.start()
        redis.start()
        self._wait_ready("postgres")
        self._wait_ready("redis")
        pg_port, redis_port = self._ports["postgres:5432"], self._ports["redis:6379"]
        self._step(f"postgres ({postgres_image}) on 127.0.0.1:{pg_port}")
        self._step(f"redis ({redis_image}) on 127.0.0.1:{redis_port}")

        in_network_db = f"postgresql://{POSTGRES_USER}:{password}@postgres:5432/{DATABASE_NAME}"
        self._migrate(service_image, in_network_db)
        self._step(f"migrated database {DATABASE_NAME!r} (python -m alembic upgrade head in {service_image})")

        proxy_api_url = self._start_fault_proxy(service_image)
        ToxiproxyClient(proxy_api_url).populate(
            [
                {
                    "name": name,
                    "upstream": f"{name}:{DEPENDENCY_PORTS[name]}",
                    "listen": f"0.0.0.0:{PROXY_PORTS[name]}",
                }
                for name in DEPENDENCIES
            ]
        )
        proxied_pg = self._ports[f"proxy:{PROXY_PORTS['postgres']}"]
        proxied_redis = self._ports[f"proxy:{PROXY_PORTS['redis']}"]
        self._step(f"fault proxy API on {proxy_api_url}")
        self._step(f"fault proxy: postgres via 127.0.0.1:{proxied_pg}, redis via 127.0.0.1:{proxied_redis}")

        self._service_env = {
            "DATABASE_URL": f"postgresql://{POSTGRES_USER}:{password}@proxy:{PROXY_PORTS['postgres']}/{DATABASE_NAME}",
            "REDIS_URL": f"redis://proxy:{PROXY_PORTS['redis']}/0",
            **generated_credentials(),
            **self.extra_env,
        }
        self._service_image_name = service_image
        self.api_port = self.api_port or free_port()
        self._step(f"service: starting {self.workers} worker(s) in {service_image}")
        self._resources.callback(self._stop_service)
        self._start_service()
        database_url = f"postgresql://{POSTGRES_USER}:{password}@127.0.0.1:{pg_port}/{DATABASE_NAME}"
        self._endpoints = StackEndpoints(
            api_url=f"http://127.0.0.1:{self.api_port}",
            proxy_api_url=proxy_api_url,
            database_url=database_url,
            proxied_database_url=database_url.replace(f"127.0.0.1:{pg_port}/", f"127.0.0.1:{proxied_pg}/"),
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            proxied_redis_url=f"redis://127.0.0.1:{proxied_redis}/0",
            api_key=self._service_env["API_KEY"],
            service_log=directory / "service.log",
        )
        self._step(f"service: live on http://127.0.0.1:{self.api_port}")

    def _configure_reaper(self) -> None:
        """Testcontainers' reaper (Ryuk) publishes its port on every interface and needs its image pulled; the
        ownership labels above do its job instead (at the next start). TESTCONTAINERS_RYUK_DISABLED=false
        turns it back on."""
        if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
            testcontainers_config.ryuk_disabled = True

    def _service_image(self, client: docker.DockerClient, present: Callable[[str], bool]) -> str:
        if self.service_image:
            return self.service_image
        base = self.python_image or images.resolve("python", present)
        tag = images.SERVICE_IMAGE
        started = time.monotonic()
        try:
            client.images.build(
                path=str(REPO_ROOT),
                dockerfile="Dockerfile",
                tag=tag,
                buildargs={"BASE_IMAGE": base},
                labels={"io.executable-runbook.built-by": "chaos.stack.docker"},
                rm=True,
            )
        except docker.errors.BuildError as error:
            lines = "".join(str(item.get("stream", item.get("error", ""))) for item in error.build_log)
            raise ServerError(f"building {tag} from the Dockerfile failed: {error}\n{lines[-3000:]}") from None
        except docker.errors.APIError as error:
            raise DockerUnavailable(f"building {tag} on {base} failed: {error}") from None
        self._step(f"image {tag} built from the Dockerfile on {base} ({time.monotonic() - started:.1f}s)")
        return tag

    def _container(
        self,
        role: str,
        image: str,
        *,
        env: Mapping[str, str] | None = None,
        command: list[str] | None = None,
        ports: Mapping[int, int | None] | None = None,
        healthcheck: Mapping[str, Any] | None = None,
    ) -> DockerContainer:
        """A container on the stack's network, aliased `role`, each port published on 127.0.0.1 (a port chosen
        now, so that a restarted container comes back on it)."""
        assert self._network is not None
        container = DockerContainer(image, env=dict(env or {}), network=self._network, network_aliases=[role])
        container.with_name(f"rb-{self.id}-{role}")
        if command is not None:
            container.with_command(command)
        for port, host_port in (ports or {}).items():
            chosen = host_port or free_port()
            self._ports[f"{role}:{port}"] = chosen
            # docker-py takes (host address, host port); testcontainers' own type only knows a port.
            container.ports[f"{port}/tcp"] = ("127.0.0.1", chosen)  # type: ignore[assignment]
        kwargs: dict[str, Any] = {"labels": {**self._labels, LABEL_ROLE: role}}
        if healthcheck is not None:
            kwargs["healthcheck"] = dict(healthcheck)
        container.with_kwargs(**kwargs)
        self._containers[role] = container
        self._resources.callback(self._remove_container, role)
        return container

    def _migrate(self, image: str, database_url: str) -> None:
        migrate = self._container(
            "migrate",
            image,
            env={"DATABASE_URL": database_url},
            command=["python", "-m", "alembic", "upgrade", "head"],
            healthcheck=NO_HEALTHCHECK,
        )
        migrate.start()
        status = migrate.wait()
        output = bytes(migrate.get_wrapped_container().logs()).decode(errors="replace")
        self._remove_container("migrate")
        if status != 0:
            raise ServerError(f"python -m alembic upgrade head exited with {status}:\n{output[-2000:]}")

    def _start_fault_proxy(self, image: str) -> str:
        command = [
            "python",
            "-m",
            "chaos.proxy",
            "--listen",
            f"0.0.0.0:{PROXY_API_PORT}",
            "--allow-non-loopback-listen",
            *[argument for name in DEPENDENCIES for argument in ("--allow-upstream", name)],
        ]
        proxy = self._container(
            "proxy",
            image,
            command=command,
            ports={PROXY_API_PORT: self.proxy_api_port, **{port: None for port in PROXY_PORTS.values()}},
            healthcheck=NO_HEALTHCHECK,
        )
        proxy.start()
        api_url = f"http://127.0.0.1:{self._ports[f'proxy:{PROXY_API_PORT}']}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if answers_ok(f"{api_url}/version"):
                return api_url
            if self._status("proxy") != "running" or time.monotonic() > deadline:
                raise ServerError(f"the fault proxy container did not answer on {api_url}:\n{self._logs('proxy')}")
            time.sleep(0.1)

    def _start_service(self) -> None:
        assert self.directory is not None
        assert self.api_port is not None
        self._remove_container("api")
        container = self._container(
            "api",
            self._service_image_name,
            env=self._service_env,
            command=["python", "-m", "service", "--bind", f"0.0.0.0:{API_PORT}", "--workers", str(self.workers)],
            ports={API_PORT: self.api_port},
        )
        self._service = DockerService(
            container, base_url=f"http://127.0.0.1:{self.api_port}", log_path=self.directory / "service.log"
        )
        self._service.start()

    def _stop_service(self) -> None:
        if self._service is not None:
            self._service.stop()

    def stop(self) -> None:
        try:
            self._resources.close()
        finally:
            self._containers.clear()
            self._service = None
            self._endpoints = None
            self._network = None
            self._client = None
            live_stacks.discard(self)

    def _remove_container(self, role: str) -> None:
        container = self._containers.pop(role, None)
        if container is not None and container._container is not None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.stop(force=True, delete_volume=True)

    def _remove_network(self) -> None:
        if self._network is not None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self._network.remove()

    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is None:
            raise ServerError("the stack is not running")
        return self._endpoints

    # -- containers --------------------------------------------------------------------------------------
    def container(self, name: str) -> Container:
        """The docker-py container of a part of the stack: postgres, redis, proxy or api."""
        try:
            return self._containers[name].get_wrapped_container()
        except KeyError:
            raise ValueError(f"unknown container {name!r}; the stack has {list(self._containers)}") from None

    def _status(self, name: str) -> str:
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException, ValueError):
            wrapped = self.container(name)
            wrapped.reload()
            return str(wrapped.status)
        return "gone"

    def _logs(self, name: str, lines: int = 30) -> str:
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException, ValueError):
            return bytes(self.container(name).logs(tail=lines)).decode(errors="replace")
        return "(no log)"

    def _wait_ready(self, name: Dependency, timeout: float = READY_TIMEOUT_S) -> None:
        """Until the server answers inside its container (pg_isready over TCP; redis-cli PING)."""
        probe = (
            ["pg_isready", "-q", "-h", "127.0.0.1", "-U", POSTGRES_USER, "-d", DATABASE_NAME]
            if name == "postgres"
            else ["redis-cli", "ping"]
        )
        deadline = time.monotonic() + timeout
        while True:
            status = self._status(name)
            if status == "running":
                with contextlib.suppress(docker.errors.APIError):
                    result = self.container(name).exec_run(probe)
                    if result.exit_code == 0 and (name == "postgres" or b"PONG" in result.output):
                        return
            elif status not in {"created", "restarting"}:
                raise ServerError(f"{name} container is {status}:\n{self._logs(name)}")
            if time.monotonic() > deadline:
                raise ServerError(f"{name} did not become ready within {timeout}s:\n{self._logs(name)}")
            time.sleep(0.1)

    # -- dependencies ----------------------------------------------------------------------------------
    def _dependency(self, name: Dependency) -> Container:
        if name not in DEPENDENCIES:
            raise ValueError(f"unknown dependency {name!r}; the stack has {list(DEPENDENCIES)}")
        return self.container(name)

    # Like LocalStack's servers, every operation is safe in any state (drills' rollbacks rely on that): starting
    # a running server, resuming one that is not paused, killing one that is down change nothing.
    def _state(self, name: Dependency) -> tuple[Container, str]:
        container = self._dependency(name)
        container.reload()
        return container, str(container.status)

    def stop_dependency(self, name: Dependency) -> None:
        container, status = self._state(name)
        if status == "paused":
            container.unpause()
        if status in {"running", "paused", "restarting"}:
            container.stop(timeout=DEPENDENCY_STOP_TIMEOUT_S)

    def start_dependency(self, name: Dependency) -> None:
        container, status = self._state(name)
        if status in {"running", "paused"}:
            return
        container.start()
        self._wait_ready(name)

    def kill_dependency(self, name: Dependency) -> None:
        container, status = self._state(name)
        if status == "paused":
            container.unpause()  # a frozen process cannot take the SIGKILL until thawed
        if status in {"running", "paused", "restarting"}:
            container.kill()  # SIGKILL to the container's init: every process in it dies
            container.wait(timeout=DEPENDENCY_STOP_TIMEOUT_S)

    def pause_dependency(self, name: Dependency) -> None:
        container, status = self._state(name)
        if status == "running":
            container.pause()

    def resume_dependency(self, name: Dependency) -> None:
        container, status = self._state(name)
        if status == "paused":
            container.unpause()

    def restart_dependency(self, name: Dependency) -> None:
        self.stop_dependency(name)
        self.start_dependency(name)

    # -- the service -----------------------------------------------------------------------------------
    def restart_service(self, env_overrides: Mapping[str, str] | None = None, *, workers: int | None = None) -> None:
        if self._service is None:
            raise ServerError("the stack is not running")
        self._service.stop()
        self._service_env = {**self._service_env, **(env_overrides or {})}
        if workers is not None:
            self.workers = workers
        self._start_service()

    @property
    def service(self) -> DockerService:
        if self._service is None:
            raise ServerError("the stack is not running")
        return self._service

    @property
    def service_env(self) -> Mapping[str, str]:
        return dict(self._service_env)

    @property
    def service_command(self) -> list[str]:
        """`python -m service` in the service image, its environment passed by name from the caller's (for
        start-up checks: run it with an environment and read its exit status and stderr)."""
        names = sorted({*self._service_env, "DATABASE_URL", "REDIS_URL", "API_KEY", "JWT_SECRET"})
        passed = [argument for name in names for argument in ("-e", name)]
        image = self._service_image_name
        return ["docker", "run", "--rm", "--network", "none", *passed, image, "python", "-m", "service"]
