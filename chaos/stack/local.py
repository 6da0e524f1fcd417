"""The stack as local processes: throwaway PostgreSQL, Redis, fault proxy and service on 127.0.0.1.

    with LocalStack() as stack:
        stack.api_url                       # the service (hypercorn subprocess) on 127.0.0.1
        stack.proxy("postgres").add_toxic(type="latency", attributes={"latency": 300})
        stack.pause_dependency("redis")     # SIGSTOP to every redis process
        stack.restart_service(env_overrides={"INGEST_MAX_BATCH_ITEMS": "10"})   # a rollout

The service reaches each dependency through a proxy named after it ("postgres", "redis"), so faults can be
injected between them; tests can also reach each server directly. `StackBackend` is what every backend
provides: `LocalStack` runs local processes on ephemeral 127.0.0.1 ports; `chaos.stack.docker.DockerStack` runs
them as containers (Testcontainers) publishing on 127.0.0.1. `make_stack(backend)` picks one: "local", "docker",
or "auto" (docker when a Docker engine answers and its images are present, else local); without an argument,
the STACK_BACKEND environment variable, else "local".

Everything a stack starts is stopped when its `with` block ends (also when the block raised), and at
interpreter exit for stacks left running. If the process that started a `LocalStack` dies without stopping it
(`kill -9`, the OOM killer), every server, the fault proxy and the service die with it (a parent-death
signal), and the next start removes their labelled temporary directories (`chaos.lifecycle`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from chaos.lifecycle import ServerError, labelled_directory
from chaos.proxy import FaultProxy, FaultProxyProcess
from chaos.proxy.client import ToxiproxyClient
from chaos.stack.base import (
    DATABASE_NAME,
    THROWAWAY_CAPABILITIES,
    Capability,
    Dependency,
    Progress,
    StackBackend,
    StackEndpoints,
    live_stacks,
)
from chaos.stack.migrations import migrate
from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess, generated_credentials

FaultProxyMode = Literal["process", "thread"]


def _replace_port(url: str, port: int) -> str:
    """The same URL (credentials, database) with 127.0.0.1:<port> as its address."""
    scheme, rest = url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    path = location.split("/", 1)[1] if "/" in location else ""
    return f"{scheme}://{credentials + '@' if credentials else ''}127.0.0.1:{port}/{path}"


class LocalStack(StackBackend):
    """Throwaway local processes: PostgreSQL and Redis servers, the fault proxy (or an external
    Toxiproxy), and the service under hypercorn, all on 127.0.0.1."""

    capabilities: frozenset[Capability] = THROWAWAY_CAPABILITIES | {"rolling-restart", "deploy-checkout"}

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
        # Everything is asked to stop at once, then waited for one by one (each wait also escalates to a kill):
        # the service's drain and PostgreSQL's shutdown overlap rather than follow each other.
        if self._service is not None:
            self._service.terminate()
        for server in self._servers.values():
            server.begin_stop()
        try:
            self._resources.close()
        finally:
            self._servers.clear()
            self.fault_proxy_process = None
            self._service = None
            self._endpoints = None
            live_stacks.discard(self)

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
        """The old service drains and exits while the new one starts (each takes about a second and a half,
        mostly interpreter start-up and teardown): the port is shared (SO_REUSEPORT), and this returns once the
        old one has exited and the new one is live, so from then on only the new environment answers, as
        after a stop and a start."""
        if self._service is None:
            raise ServerError("the stack is not running")
        old = self._service
        old.terminate()  # SIGTERM: readiness `draining`, in-flight requests finished, then exit
        try:
            self._service_env = {**self._service_env, **(env_overrides or {})}
            if workers is not None:
                self.workers = workers
            self._start_service()
        finally:
            old.stop()  # waits for the exit (SIGKILL after its timeout), also when the new one did not come up

    def rolling_restart_service(
        self,
        env_overrides: Mapping[str, str] | None = None,
        *,
        code_root: Path | None = None,
        application: str | None = None,
    ) -> None:
        """The new service starts on the same port beside the old one (the stack starts each service with
        LISTEN_REUSE_PORT=true, so both set SO_REUSEPORT and the kernel spreads new connections over both);
        once the new one listens, the old one gets SIGTERM and drains: readiness `draining`, in-flight
        requests finished. With `code_root`, the new service runs another checkout of the code (a release
        drill's releases; one from before LISTEN_REUSE_PORT existed shares the port only with workers >= 2);
        `application` serves that MODULE:ATTR from now on (None keeps the one in use;
        `chaos.stack.service.SERVICE_APPLICATION` goes back to the service's own)."""
        if self._service is None or self.directory is None:
            raise ServerError("the stack is not running")
        old = self._service
        if application is not None:
            self.application = application
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


def _destroy_proxies(client: ToxiproxyClient, names: list[str]) -> None:
    """Remove the proxies a stack created on an external Toxiproxy."""
    for name in names:
        found = client.get_proxy(name)
        if found is not None:
            found.destroy()
