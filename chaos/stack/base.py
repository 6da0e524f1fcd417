"""What every stack backend provides: a running PostgreSQL, Redis, fault proxy and service, breakable on purpose.

`StackBackend` is the contract drills, conformance and tests program against; `chaos.stack.local.LocalStack`
(local processes) and `chaos.stack.docker.DockerStack` (containers) implement it, and `chaos.stack.make_stack`
picks one. Every stack started is stopped at interpreter exit if its `with` block did not stop it.
"""

from __future__ import annotations

import atexit
import contextlib
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from chaos.lifecycle import ServerError
from chaos.proxy.client import ProxyHandle, ToxiproxyClient
from chaos.stack.fleet import Fleet

Dependency = Literal["postgres", "redis"]
DEPENDENCIES: tuple[Dependency, ...] = ("postgres", "redis")
DATABASE_NAME = "events"

# What a backend (a throwaway stack, or a deployment described by a target file) can do; a drill states what it
# needs (`Drill.requires`) and the engine asks `supports`, never the backend's class.
#   proxy-faults         a fault proxy (Toxiproxy's API) between the service and PostgreSQL and Redis
#   dependency-process   PostgreSQL's and Redis's servers can be stopped, killed, paused and started again
#   service-reconfigure  the service can be restarted with another environment (limits, rate limits)
#   rolling-restart      the new service starts beside the old one, so no connection is refused
#   deploy-checkout      the service can be replaced by another checkout of the code (`code_root`, `application`)
#   replicas             several replicas behind a load balancer; one can be killed and restarted
#   replica-partition    one replica can be cut from PostgreSQL and Redis while the others keep them
#   image-deploy         a replica can be replaced by one running another image tag
#   balancer-view        the load balancer's own view of each replica (in rotation or not) can be read
Capability = Literal[
    "proxy-faults",
    "dependency-process",
    "service-reconfigure",
    "rolling-restart",
    "deploy-checkout",
    "replicas",
    "replica-partition",
    "image-deploy",
    "balancer-view",
]
# What every throwaway stack offers: its own fault proxy, its own servers, its own service process.
THROWAWAY_CAPABILITIES: frozenset[Capability] = frozenset({"proxy-faults", "dependency-process", "service-reconfigure"})

Progress = Callable[[str], None]
live_stacks: weakref.WeakSet[StackBackend] = weakref.WeakSet()


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


class NotCapable(ServerError):
    """The backend does not offer what was asked of it (see `StackBackend.capabilities`)."""


class StackBackend(ABC):
    """A running PostgreSQL, Redis, fault proxy and service, whose dependencies can be broken on purpose."""

    # A class default that an instance may narrow (a deployment offers what its target file's drivers allow).
    capabilities: frozenset[Capability] = THROWAWAY_CAPABILITIES

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
        live_stacks.add(self)
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

    def rolling_restart_service(
        self,
        env_overrides: Mapping[str, str] | None = None,
        *,
        code_root: Path | None = None,
        application: str | None = None,
    ) -> None:
        """Replace the service with one running a changed environment, without refusing any connection where
        the backend has "rolling-restart" (others restart it). `code_root` (another checkout of the code) and
        `application` (MODULE:ATTR served from now on; None keeps the one in use) need
        "deploy-checkout"."""
        if code_root is not None or application is not None:
            self.require("deploy-checkout")
        self.restart_service(env_overrides)

    @property
    def fault_leases(self) -> bool:
        """Whether the fault proxy must honour fault leases (our proxy does; a real Toxiproxy does not, and a
        target file says `leases = false` for it, accepting faults that stay until removed)."""
        return True

    @property
    def behind_balancer(self) -> bool:
        """Whether the API is reached through a load balancer acting on readiness (a deployment): when every
        replica is out of rotation the balancer answers 503 NO_READY_REPLICA itself."""
        return False

    def fleet(self) -> Fleet:
        """The replicas behind the balancer, for the fleet drills ("replicas"); a throwaway stack has none."""
        self.require("replicas")
        raise NotCapable(f"the {type(self).__name__} backend declares replicas but has no fleet")

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        """Raise `NotCapable` unless this backend offers `capability`."""
        if not self.supports(capability):
            offered = ", ".join(sorted(self.capabilities)) or "none beyond the basic contract"
            raise NotCapable(f"the {type(self).__name__} backend cannot {capability} (it offers: {offered})")

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


@atexit.register
def _stop_leftovers() -> None:
    for stack in list(live_stacks):
        with contextlib.suppress(Exception):
            stack.stop()
