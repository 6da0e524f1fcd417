"""`DockerFleet`: a deployment's replicas, found by their compose labels and driven through the Docker Engine
API (chaos.targets.docker_driver), with the balancer's view read from HAProxy's stats (chaos.targets.balancer).
"""

from __future__ import annotations

import time

from chaos.stack.fleet import Replica
from chaos.targets.balancer import read_servers
from chaos.targets.docker_driver import Container, DockerDriver, DockerDriverError
from chaos.targets.spec import DockerDriverSpec
from chaos.targets.watchdog import Leases

WAIT_S = 60.0
KILL_TIMEOUT_S = 5.0


class DockerFleet:
    def __init__(self, spec: DockerDriverSpec, driver: DockerDriver) -> None:
        self.spec = spec
        self.driver = driver
        self.leases = Leases(spec.project, socket=spec.socket)
        running = self.replicas()
        self._image = spec.image or (running[0].image if running else "")

    @property
    def image(self) -> str:
        return self._image

    @property
    def candidate_image(self) -> str | None:
        return self.spec.candidate_image

    @property
    def broken_image(self) -> str | None:
        return self.spec.broken_image

    def _replica(self, container: Container) -> Replica:
        ip = container.ip.get(self.spec.probe_network) if self.spec.probe_network else None
        url = f"http://{ip}:{self.spec.replica_port}" if ip else None
        return Replica(
            container.id, container.name, container.number, container.image, url, frozenset(container.ip.values())
        )

    def replicas(self) -> list[Replica]:
        return [self._replica(c) for c in self.driver.containers(self.spec.service) if c.running]

    def replica(self, replica_id: str) -> Replica | None:
        for container in self.driver.containers(self.spec.service, all=True):
            if container.id == replica_id:
                return self._replica(container)
        return None

    def running(self, replica: Replica) -> bool:
        return any(c.id == replica.id and c.running for c in self.driver.containers(self.spec.service, all=True))

    def kill(self, replica: Replica) -> None:
        self.leases.hold(f"start:{replica.id}")
        pid = self.driver.inspect(replica.id)["State"].get("Pid")
        try:
            self.driver.crash(replica.id)  # the kill a restart policy answers, where the engine is this host
        except DockerDriverError:
            self.driver.kill(replica.id, "KILL")
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while self.driver.inspect(replica.id)["State"].get("Pid") == pid and time.monotonic() < deadline:
            time.sleep(0.01)  # dead once the engine has seen its process go (stopped, or already restarted)

    def start(self, replica: Replica) -> None:
        if not self.running(replica):
            self.driver.start(replica.id)
        self.driver.wait_running(replica.id, WAIT_S)
        self.leases.release(f"start:{replica.id}")

    def _network(self) -> str:
        if not self.spec.partition_network:
            raise DockerDriverError("the target's docker driver names no partition_network")
        return self.spec.partition_network

    def partition(self, replica: Replica) -> None:
        self.leases.hold(f"connect:{replica.id}:{self._network()}")
        self.driver.disconnect(replica.id, self._network())

    def heal(self, replica: Replica) -> None:
        network = self._network()
        container = next((c for c in self.driver.containers(self.spec.service, all=True) if c.id == replica.id), None)
        if container is not None and network not in container.ip:
            self.driver.connect(replica.id, network)
        self.leases.release(f"connect:{replica.id}:{network}")

    def drain(self, replica: Replica, timeout_s: float) -> float:
        started = time.monotonic()
        self.driver.stop(replica.id, timeout_s)
        return time.monotonic() - started

    def replace(self, stopped: Replica, image: str) -> Replica:
        new = self.driver.clone_with_image(stopped.id, image)
        self.driver.remove(stopped.id, force=True)
        return self._replica(new)

    def image_exists(self, image: str) -> bool:
        return self.driver.image_exists(image)

    def balancer_view(self) -> dict[str, bool]:
        if not self.spec.balancer_stats_url:
            raise DockerDriverError("the target's docker driver names no balancer_stats_url")
        servers = read_servers(self.spec.balancer_stats_url, self.spec.balancer_backend)
        by_ip = {ip: c.id for c in self.driver.containers(self.spec.service, all=True) for ip in c.ip.values()}
        return {by_ip[s.ip]: s.in_rotation for s in servers if s.ip in by_ip}
