"""What a fleet drill asks of a target with replicas behind a load balancer (`StackBackend.fleet()`).

A throwaway stack has one service process and no fleet; a deployment target with a `docker` driver has one
(chaos.targets.fleet.DockerFleet). Drills program against this protocol, never a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica of the API, as the fleet knows it."""

    id: str  # container id
    name: str  # container name
    number: int  # replica index (compose's container number)
    image: str  # the image reference it was started from
    url: str | None  # where the harness reaches it directly, without the balancer (None: it cannot)
    addresses: frozenset[str]  # its IP addresses (the balancer knows it by one of them)


class Fleet(Protocol):
    @property
    def image(self) -> str:
        """The image reference the replicas run in steady state (the previous good release)."""

    @property
    def candidate_image(self) -> str | None:
        """The next release's image, for a rolling deploy (named by the target file)."""

    @property
    def broken_image(self) -> str | None:
        """A release image known to be broken, for the bad-release drill (named by the target file)."""

    def replicas(self) -> list[Replica]:
        """The running replicas, by number."""

    def replica(self, replica_id: str) -> Replica | None:
        """One replica by container id, running or not (None: it is gone)."""

    def running(self, replica: Replica) -> bool: ...

    def kill(self, replica: Replica) -> None:
        """SIGKILL to the replica's main process: a crash, which its restart policy answers. Returns once that
        process is gone (bounded), so whatever was sent before may have been in flight on it."""

    def start(self, replica: Replica) -> None:
        """Start a killed or stopped replica again (what an orchestrator does when no restart policy did)."""

    def partition(self, replica: Replica) -> None:
        """Cut the replica from PostgreSQL and Redis; the others keep them."""

    def heal(self, replica: Replica) -> None:
        """Undo `partition` (idempotent)."""

    def drain(self, replica: Replica, timeout_s: float) -> float:
        """SIGTERM (the service drains: readiness `draining`, then in-flight requests finish) and wait until it
        exited; returns the seconds it took. The container stays, stopped, for `replace`."""

    def replace(self, stopped: Replica, image: str) -> Replica:
        """A new replica configured like the stopped one but running `image`, started; the old one removed."""

    def image_exists(self, image: str) -> bool: ...

    def balancer_view(self) -> dict[str, bool]:
        """Replica container id → whether the balancer routes to it now (replicas it does not know: absent)."""
