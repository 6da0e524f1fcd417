"""The stack that tests and drills run against: PostgreSQL, Redis, a fault proxy and the service.

    with LocalStack() as stack:
        stack.api_url                       # the service (hypercorn subprocess) on 127.0.0.1
        stack.proxy("postgres").add_toxic(type="latency", attributes={"latency": 300})
        stack.pause_dependency("redis")     # SIGSTOP to every redis process
        stack.restart_service(env_overrides={"INGEST_MAX_BATCH_ITEMS": "10"})   # a rollout

The service reaches each dependency through a proxy named after it ("postgres", "redis"), so faults can be
injected between them; tests can also reach each server directly. `StackBackend` is what every backend
provides: `LocalStack` runs local processes on ephemeral 127.0.0.1 ports; `chaos.docker_stack.DockerStack` runs
them as containers (Testcontainers) publishing on 127.0.0.1. `make_stack(backend)` picks one: "local", "docker",
or "auto" (docker when a Docker engine answers and its images are present, else local); without an argument,
the STACK_BACKEND environment variable, else "local".

Everything a stack starts is stopped when its `with` block ends (also when the block raised), and at
interpreter exit for stacks left running. If the process that started a `LocalStack` dies without stopping it
(`kill -9`, the OOM killer), every server, the fault proxy and the service die with it (a parent-death
signal), and the next start removes their labelled temporary directories (`chaos.lifecycle`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from chaos.lifecycle import labelled_directory
from chaos.proxy import FaultProxy, FaultProxyProcess
from chaos.servers import PostgresServer, RedisServer, ServerError
from chaos.service_process import ServiceProcess, generated_credentials, migrate
from chaos.toxiproxy_client import ProxyHandle, ToxiproxyClient

Dependency = Literal["postgres", "redis"]
FaultProxyMode = Literal["process", "thread"]
Backend = Literal["local", "docker"]
BACKEND_CHOICES = ("local", "docker", "auto")
STACK_BACKEND_ENV = "STACK_BACKEND"
DEPENDENCIES: tuple[Dependency, ...] = ("postgres", "redis")
DATABASE_NAME = "events"

Progress = Callable[[str], None]
_live_stacks: weakref.WeakSet[StackBackend] = weakref.WeakSet()


@dataclass(frozen=True)
class StackEndpoints:
    """Where everything in a running stack answers."""

    api_url: str
    proxy_api_url: str  # Toxiproxy's HTTP API: point TOXIPROXY_URL here
    database_url: str  # straight to PostgreSQL
    proxied_database_url: str  # through the "postgres" proxy: what the service uses
    redis_url: str
    proxied_redis_url: str
    api_key: str  # for X-API-Key
    service_log: Path | None = None


class StackBackend(ABC):
    """A running PostgreSQL, Redis, fault proxy and service, whose dependencies can be broken on purpose."""

    # Set by every backend's constructor; `start` and `_step` below rely on them.
    _endpoints: StackEndpoints | None
    _started_at: float
    _progress: Progress

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start everything, or clean up what was started and raise."""
        if self._endpoints is not None:
            return self
        self._started_at = time.monotonic()
        _live_stacks.add(self)
        try:
            self._start()
        except BaseException:
            self._step("start failed; stopping and removing what was started")
            self.stop()
            raise
        return self

    @abstractmethod
    def _start(self) -> None:
        """Start every part, registering how to undo each so that `stop` can clean up a partial start."""

    def _step(self, message: str) -> None:
        self._progress(f"[{time.monotonic() - self._started_at:5.1f}s] {message}")

    @abstractmethod
    def stop(self) -> None:
        """Stop everything and remove what was created (idempotent)."""

    @property
    @abstractmethod
    def endpoints(self) -> StackEndpoints: ...

    # -- breaking a dependency -------------------------------------------------------------------------
    @abstractmethod
    def stop_dependency(self, name: Dependency) -> None:
        """Orderly shutdown of the server."""

    @abstractmethod
    def start_dependency(self, name: Dependency) -> None:
        """Start a stopped or killed server again, on the same port with the same data."""

    @abstractmethod
    def kill_dependency(self, name: Dependency) -> None:
        """SIGKILL to every process of the server, as a crash."""

    @abstractmethod
    def pause_dependency(self, name: Dependency) -> None:
        """SIGSTOP to every process of the server: connections stay open, nothing answers."""

    @abstractmethod
    def resume_dependency(self, name: Dependency) -> None: ...

    @abstractmethod
    def restart_dependency(self, name: Dependency) -> None: ...

    # -- the service -----------------------------------------------------------------------------------
    @abstractmethod
    def restart_service(self, env_overrides: Mapping[str, str] | None = None, *, workers: int | None = None) -> None:
        """Stop the service (SIGTERM, graceful drain) and start it again with a changed environment.

        The overrides stay in force for later restarts, as a rollout's configuration does."""

    def rolling_restart_service(self, env_overrides: Mapping[str, str] | None = None) -> None:
        """Replace the service with one running a changed environment without refusing any connection.

        Backends that cannot overlap the old and the new service restart it instead."""
        self.restart_service(env_overrides)

    @property
    @abstractmethod
    def service_env(self) -> Mapping[str, str]:
        """The environment the service was last started with (secrets included)."""

    # -- conveniences every backend gets -------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.endpoints.api_url

    @property
    def proxy_api_url(self) -> str:
        return self.endpoints.proxy_api_url

    @property
    def api_key(self) -> str:
        return self.endpoints.api_key

    @property
    def database_url(self) -> str:
        return self.endpoints.database_url

    @property
    def proxied_database_url(self) -> str:
        return self.endpoints.proxied_database_url

    @property
    def redis_url(self) -> str:
        return self.endpoints.redis_url

    @property
    def proxied_redis_url(self) -> str:
        return self.endpoints.proxied_redis_url

    def toxiproxy(self) -> ToxiproxyClient:
        """A toxiproxy-python client for this stack's fault proxy."""
        return ToxiproxyClient(self.proxy_api_url)

    def proxy(self, name: Dependency) -> ProxyHandle:
        """The proxy between the service and a dependency."""
        return self.toxiproxy().proxy(name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _replace_port(url: str, port: int) -> str:
    """The same URL (credentials, database) with 127.0.0.1:<port> as its address."""
    scheme, rest = url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    path = location.split("/", 1)[1] if "/" in location else ""
    return f"{scheme}://{credentials + '@' if credentials else ''}127.0.0.1:{port}/{path}"


class LocalStack(StackBackend):
    """Throwaway local processes: PostgreSQL and Redis servers, the fault proxy (or an external
    Toxiproxy), and the service under hypercorn, all on 127.0.0.1."""

    def __init__(
        self,
        *,
        workers: int = 1,
        api_port: int | None = None,
        proxy_api_listen: str = "127.0.0.1:0",
        fault_proxy: FaultProxyMode = "process",
        toxiproxy_url: str | None = None,
        service_env: Mapping[str, str] | None = None,
        application: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        """`api_port` None picks a free port. The fault proxy runs as `python -m chaos.proxy` by default, so
        it never competes for the GIL with load a test or drill generates in this process ("thread" runs it
        here instead); `toxiproxy_url` uses that Toxiproxy rather than starting one. `service_env` adds to
        (or overrides) the service's generated environment; `application` (MODULE:ATTR) serves another
        ASGI app in place of the service's own (`python -m service --app`)."""
        self.workers = workers
        self.api_port = api_port
        self.proxy_api_listen = proxy_api_listen
        self.fault_proxy_mode = fault_proxy
        self.fault_proxy_process: FaultProxyProcess | None = None
        self.toxiproxy_url = toxiproxy_url
        self.extra_env = dict(service_env or {})
        self.application = application
        self._rollouts = 0
        self._progress = progress or (lambda message: None)
        self._started_at = 0.0
        self._resources = contextlib.ExitStack()
        self._servers: dict[Dependency, PostgresServer | RedisServer] = {}
        self._service: ServiceProcess | None = None
        self._service_env: dict[str, str] = {}
        self._endpoints: StackEndpoints | None = None
        self.directory: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def _start(self) -> None:
        directory = labelled_directory("stack")
        self.directory = directory
        self._resources.callback(shutil.rmtree, directory, True)

        self._step("postgres: initdb")
        postgres = PostgresServer()
        self._resources.callback(postgres.close)
        self._servers["postgres"] = postgres
        postgres.start()
        database_url = postgres.create_database(DATABASE_NAME)
        self._step(f"postgres: up on 127.0.0.1:{postgres.port}; migrating database {DATABASE_NAME!r}")
        migrate(database_url)

        redis = RedisServer()
        self._resources.callback(redis.close)
        self._servers["redis"] = redis
        redis.start()
        self._step(f"redis: up on 127.0.0.1:{redis.port}")

        proxy_api_url = self.toxiproxy_url or self._start_fault_proxy()
        client = ToxiproxyClient(proxy_api_url)
        handles = client.populate(
            [
                {"name": name, "upstream": f"127.0.0.1:{server.port}", "listen": "127.0.0.1:0"}
                for name, server in self._servers.items()
            ]
        )
        if self.toxiproxy_url:
            self._resources.callback(_destroy_proxies, client, list(handles))
        proxied_database_url = _replace_port(database_url, handles["postgres"].listen_port)
        proxied_redis_url = _replace_port(redis.url(), handles["redis"].listen_port)
        self._step(
            f"fault proxy: postgres via 127.0.0.1:{handles['postgres'].listen_port}, "
            f"redis via 127.0.0.1:{handles['redis'].listen_port}"
        )

        credentials = generated_credentials()
        self._service_env = {
            "DATABASE_URL": proxied_database_url,
            "REDIS_URL": proxied_redis_url,
            **credentials,
            **self.extra_env,
        }
        self._step(f"service: starting {self.workers} worker(s)")
        self._start_service()
        assert self._service is not None
        self._endpoints = StackEndpoints(
            api_url=self._service.base_url,
            proxy_api_url=proxy_api_url,
            database_url=database_url,
            proxied_database_url=proxied_database_url,
            redis_url=redis.url(),
            proxied_redis_url=proxied_redis_url,
            api_key=self._service_env["API_KEY"],
            service_log=self._service.log_path,
        )
        self._step(f"service: live on {self._service.base_url}")

    def _start_fault_proxy(self) -> str:
        if self.fault_proxy_mode == "thread":
            in_thread = FaultProxy(self.proxy_api_listen).start_in_thread()
            self._resources.callback(in_thread.stop)
            api_url = in_thread.api_url
        else:
            process = FaultProxyProcess(self.proxy_api_listen)
            self._resources.callback(process.close)
            self.fault_proxy_process = process.start()
            api_url = process.api_url
        self._step(f"fault proxy: API on {api_url} ({self.fault_proxy_mode})")
        return api_url

    def _start_service(self) -> None:
        assert self.directory is not None
        service = ServiceProcess(
            self._service_env,
            port=self.api_port,
            workers=self.workers,
            log_path=self.directory / "service.log",
            application=self.application,
            reuse_port=True,  # so that a rolling restart can start the next one beside it
        )
        if self._service is None:
            self._resources.callback(self._stop_service)
        self._service = service
        self.api_port = service.port  # a restart comes back on the same port
        service.start()

    def _stop_service(self) -> None:
        if self._service is not None:
            self._service.stop()

    def stop(self) -> None:
        try:
            self._resources.close()
        finally:
            self._servers.clear()
            self.fault_proxy_process = None
            self._service = None
            self._endpoints = None
            _live_stacks.discard(self)

    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is None:
            raise ServerError("the stack is not running")
        return self._endpoints

    # -- dependencies ----------------------------------------------------------------------------------
    def server(self, name: Dependency) -> PostgresServer | RedisServer:
        """The server process behind a dependency (for pids, logs, ports)."""
        try:
            return self._servers[name]
        except KeyError:
            raise ValueError(f"unknown dependency {name!r}; the stack has {list(self._servers)}") from None

    def stop_dependency(self, name: Dependency) -> None:
        self.server(name).stop()

    def start_dependency(self, name: Dependency) -> None:
        self.server(name).start()

    def kill_dependency(self, name: Dependency) -> None:
        self.server(name).kill()

    def pause_dependency(self, name: Dependency) -> None:
        self.server(name).pause()

    def resume_dependency(self, name: Dependency) -> None:
        self.server(name).resume()

    def restart_dependency(self, name: Dependency) -> None:
        self.server(name).restart()

    # -- the service -----------------------------------------------------------------------------------
    def restart_service(self, env_overrides: Mapping[str, str] | None = None, *, workers: int | None = None) -> None:
        if self._service is None:
            raise ServerError("the stack is not running")
        self._service.stop()
        self._service_env = {**self._service_env, **(env_overrides or {})}
        if workers is not None:
            self.workers = workers
        self._start_service()

    def rolling_restart_service(
        self, env_overrides: Mapping[str, str] | None = None, *, code_root: Path | None = None
    ) -> None:
        """The new service starts on the same port beside the old one (the stack starts each service with
        LISTEN_REUSE_PORT=true, so both set SO_REUSEPORT and the kernel spreads new connections over both);
        once the new one listens, the old one gets SIGTERM and drains: readiness `draining`, in-flight
        requests finished. With `code_root`, the new service runs another checkout of the code (a release
        drill's releases; one from before LISTEN_REUSE_PORT existed shares the port only with workers >= 2)."""
        if self._service is None or self.directory is None:
            raise ServerError("the stack is not running")
        old = self._service
        self._service_env = {**self._service_env, **(env_overrides or {})}
        self._rollouts += 1
        new = ServiceProcess(
            self._service_env,
            port=self.api_port,
            workers=self.workers,
            log_path=self.directory / f"service-rollout-{self._rollouts}.log",
            application=self.application,
            code_root=code_root,
            reuse_port=True,
        )
        new.start()
        new.wait_workers_listening(self.workers)
        self._service = new
        old.stop()
        if self._endpoints is not None:
            self._endpoints = replace(self._endpoints, service_log=new.log_path)

    @property
    def service(self) -> ServiceProcess:
        if self._service is None:
            raise ServerError("the stack is not running")
        return self._service

    @property
    def service_env(self) -> Mapping[str, str]:
        return dict(self._service_env)


def resolve_backend(choice: str | None = None) -> tuple[Backend, str]:
    """The backend to run and why: `choice`, else $STACK_BACKEND, else "local"; "auto" means docker when a
    Docker engine answers and the images it needs are present (nothing to pull), else local."""
    choice = choice or os.environ.get(STACK_BACKEND_ENV) or "local"
    if choice not in BACKEND_CHOICES:
        raise ValueError(f"unknown stack backend {choice!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if choice == "local":
        return "local", "local processes (asked for)"
    if choice == "docker":
        return "docker", "Docker containers (asked for)"
    try:
        from chaos.docker_stack import docker_status
    except ImportError as error:  # the harness extra (testcontainers) is not installed
        return "local", f"local processes (auto: the Docker backend cannot load: {error})"
    usable, reason = docker_status()
    if usable:
        return "docker", f"Docker containers (auto: {reason})"
    return "local", f"local processes (auto: {reason})"


def make_stack(
    backend: str | None = None,
    *,
    workers: int = 1,
    api_port: int | None = None,
    service_env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> StackBackend:
    """A stack on the chosen backend (see `resolve_backend`), not yet started. `options` go to that backend's
    class: `LocalStack` (fault_proxy, toxiproxy_url, application, proxy_api_listen) or `DockerStack`
    (proxy_api_port, postgres_image, redis_image, service_image, python_image)."""
    chosen, reason = resolve_backend(backend)
    if progress is not None:
        progress(f"backend: {reason}")
    if chosen == "docker":
        from chaos.docker_stack import DockerStack

        return DockerStack(workers=workers, api_port=api_port, service_env=service_env, progress=progress, **options)
    return LocalStack(workers=workers, api_port=api_port, service_env=service_env, progress=progress, **options)


def _destroy_proxies(client: ToxiproxyClient, names: list[str]) -> None:
    """Remove the proxies a stack created on an external Toxiproxy."""
    for name in names:
        found = client.get_proxy(name)
        if found is not None:
            found.destroy()


@atexit.register
def _stop_leftovers() -> None:
    for stack in list(_live_stacks):
        with contextlib.suppress(Exception):
            stack.stop()
