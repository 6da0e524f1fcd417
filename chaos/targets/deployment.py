"""`DeploymentTarget`: a running deployment, described by a target file, behind the `StackBackend` contract
the drills program against.

Nothing is started or stopped here: `start` checks that the target answers and its credentials are set, and
`stop` lets go of it. Faults go through the target's drivers — its fault proxy (Toxiproxy's API) for the
connections to PostgreSQL and Redis, its Docker engine for the servers themselves and for the replicas — and
the target offers exactly the capabilities those drivers allow (`TargetSpec.offers`); what it cannot do
(restart the service with another environment, deploy a git checkout) raises `NotCapable`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from chaos.lifecycle import ServerError
from chaos.proxy.client import ProxyHandle, ToxiproxyClient
from chaos.stack.base import Dependency, NotCapable, Progress, StackBackend, StackEndpoints, live_stacks
from chaos.stack.fleet import Fleet
from chaos.targets.docker_driver import DockerDriver
from chaos.targets.fleet import DockerFleet
from chaos.targets.spec import TargetSpec
from chaos.targets.watchdog import Leases
from conformance.tls import shared_tls_context

ANSWER_TIMEOUT_S = 30.0  # how long `start` waits for the target's API to answer


class DeploymentTarget(StackBackend):
    def __init__(self, spec: TargetSpec, *, progress: Progress | None = None) -> None:
        if spec.kind != "deployment" or spec.base_url is None:
            raise ValueError(f"target {spec.name} is not a deployment")
        self.spec = spec
        self.capabilities = spec.offers()
        self._endpoints: StackEndpoints | None = None
        self._started_at = time.monotonic()
        self._progress = progress or (lambda _line: None)
        self._driver: DockerDriver | None = None
        self._fleet: DockerFleet | None = None

    # -- lifecycle: nothing to start, only to check ----------------------------------------------------------
    def _start(self) -> None:
        spec = self.spec
        assert spec.base_url is not None
        api_key = spec.secret("api_key") or ""
        database_url = spec.secret("database_url") or ""
        self._step(f"target {spec.name}: {spec.base_url}")
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{spec.base_url}/health/live", timeout=3, verify=shared_tls_context()).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"target {spec.name}: {spec.base_url}/health/live did not answer 200")
            time.sleep(0.5)
        if spec.toxiproxy is not None:
            known = ToxiproxyClient(spec.toxiproxy.api_url).proxies()
            missing = sorted(set(spec.toxiproxy.proxies.values()) - set(known))
            if missing:
                raise ServerError(f"target {spec.name}: the fault proxy has no proxy named {', '.join(missing)}")
        if spec.docker is not None:
            self._driver = DockerDriver(project=spec.docker.project, socket_path=spec.docker.socket)
            self._fleet = DockerFleet(spec.docker, self._driver)
            if not self._fleet.replicas():
                raise ServerError(
                    f"target {spec.name}: no running container of compose project {spec.docker.project}, "
                    f"service {spec.docker.service}"
                )
        self._endpoints = StackEndpoints(
            api_url=spec.base_url,
            proxy_api_url=spec.toxiproxy.api_url if spec.toxiproxy else "",
            database_url=database_url,
            proxied_database_url="",
            redis_url="",
            proxied_redis_url="",
            api_key=api_key,
        )

    def stop(self) -> None:
        """Let go of the deployment (it keeps running: it is not ours to stop)."""
        self._endpoints = None
        if self._fleet is not None:
            self._fleet.leases.release_all()  # every fault was undone by the rollbacks before the target is let go
        self._fleet = None
        if self._driver is not None:
            self._driver.close()
            self._driver = None
        live_stacks.discard(self)

    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is None:
            raise ServerError(f"target {self.spec.name} is not open")
        return self._endpoints

    @property
    def behind_balancer(self) -> bool:
        return True

    @property
    def fault_leases(self) -> bool:
        return self.spec.toxiproxy is None or self.spec.toxiproxy.leases

    # -- the fault proxy -----------------------------------------------------------------------------------
    def proxy(self, name: Dependency) -> ProxyHandle:
        self.require("proxy-faults")
        assert self.spec.toxiproxy is not None
        return self.toxiproxy().proxy(self.spec.toxiproxy.proxies[name])

    # -- the dependencies' servers, through the docker driver ------------------------------------------------
    def _dependency(self, name: Dependency) -> str:
        self.require("dependency-process")
        assert self.spec.docker is not None
        assert self._driver is not None
        service = self.spec.docker.dependencies[name]
        containers = self._driver.containers(service, all=True)
        if not containers:
            raise ServerError(f"target {self.spec.name}: no container of service {service} ({name})")
        return containers[0].id

    # Each fault is held by a watchdog (chaos.targets.watchdog) that undoes it if the harness dies first.
    def stop_dependency(self, name: Dependency) -> None:
        assert self._driver is not None
        container = self._dependency(name)
        self._leases().hold(f"start:{container}")
        self._driver.stop(container, 30)

    def start_dependency(self, name: Dependency) -> None:
        container = self._dependency(name)
        assert self._driver is not None
        if not any(c.id == container and c.running for c in self._driver.containers(self._service(name), all=True)):
            self._driver.start(container)
        self._driver.wait_running(container, 60)
        self._leases().release(f"start:{container}")

    def kill_dependency(self, name: Dependency) -> None:
        assert self._driver is not None
        container = self._dependency(name)
        self._leases().hold(f"start:{container}")
        self._driver.kill(container, "KILL")

    def pause_dependency(self, name: Dependency) -> None:
        assert self._driver is not None
        container = self._dependency(name)
        self._leases().hold(f"unpause:{container}")
        self._driver.pause(container)

    def resume_dependency(self, name: Dependency) -> None:
        container = self._dependency(name)
        assert self._driver is not None
        state = next(c.state for c in self._driver.containers(self._service(name), all=True) if c.id == container)
        if state == "paused":
            self._driver.unpause(container)
        self._leases().release(f"unpause:{container}")

    def _leases(self) -> Leases:
        if self._fleet is None:
            raise NotCapable(f"target {self.spec.name} is not open")
        return self._fleet.leases

    def restart_dependency(self, name: Dependency) -> None:
        assert self._driver is not None
        self._driver.restart(self._dependency(name), 30)

    def _service(self, name: Dependency) -> str:
        assert self.spec.docker is not None
        return self.spec.docker.dependencies[name]

    # -- the service: the team's own release process, not ours ---------------------------------------------
    def restart_service(self, env_overrides: Mapping[str, str] | None = None, *, workers: int | None = None) -> None:
        self.require("service-reconfigure")

    def rolling_restart_service(
        self,
        env_overrides: Mapping[str, str] | None = None,
        *,
        code_root: Path | None = None,
        application: str | None = None,
    ) -> None:
        self.require("service-reconfigure")

    @property
    def service_env(self) -> Mapping[str, str]:
        secret = self.spec.secret("jwt_secret")
        return {"JWT_SECRET": secret} if secret else {}

    # -- the fleet ------------------------------------------------------------------------------------------
    def fleet(self) -> Fleet:
        self.require("replicas")
        if self._fleet is None:
            raise NotCapable(f"target {self.spec.name} is not open")
        return self._fleet
