"""Container faults expire by themselves (chaos/targets/watchdog.py): a watchdog outlives whoever armed it and
undoes the fault when the lease ends, unless disarmed first (RB-DRILL-TARGET)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from chaos.stack import images
from chaos.targets.docker_driver import DockerDriver
from chaos.targets.watchdog import Leases

pytestmark = pytest.mark.docker
LABEL_RUN = "io.executable-runbook.test-run"
WAIT_S = 20.0


@pytest.fixture
def paused() -> Iterator[tuple[DockerDriver, str]]:
    run = uuid.uuid4().hex[:10]
    driver = DockerDriver(project=f"rbwd{run}", timeout_s=30)
    image = images.resolve("python", driver.image_exists)
    body = {
        "Image": image,
        "Cmd": ["python", "-c", "import time; time.sleep(600)"],
        "Labels": {"com.docker.compose.project": f"rbwd{run}", "com.docker.compose.service": "web", LABEL_RUN: run},
        "HostConfig": {"NetworkMode": "none", "ReadonlyRootfs": True, "CapDrop": ["ALL"]},
    }
    container = str(
        driver.request("create", "POST", "/containers/create", params={"name": f"rbwd{run}"}, body=body).json()["Id"]
    )
    try:
        driver.start(container)
        driver.pause(container)
        yield driver, container
    finally:
        driver.remove(container, force=True)
        driver.close()


def _state(driver: DockerDriver, container: str) -> str:
    return str(driver.inspect(container)["State"]["Status"])


def test_an_armed_watchdog_undoes_the_fault_when_its_lease_ends(paused: tuple[DockerDriver, str]) -> None:
    driver, container = paused
    leases = Leases(driver.project, after_s=1.0)
    leases.hold(f"unpause:{container}")
    assert _state(driver, container) == "paused"
    deadline = time.monotonic() + WAIT_S
    while _state(driver, container) == "paused":
        assert time.monotonic() < deadline, "the watchdog did not unpause the container"
        time.sleep(0.2)
    assert _state(driver, container) == "running"
    # It did its job and exits: the unpause lands before the process has exited (in CI, on a loaded machine,
    # it was still running when first asked), so wait for the exit, bounded.
    while leases.armed():
        assert time.monotonic() < deadline, f"the watchdog unpaused the container but did not exit: {leases.armed()}"
        time.sleep(0.1)


def test_a_disarmed_watchdog_leaves_the_container_alone(paused: tuple[DockerDriver, str]) -> None:
    driver, container = paused
    leases = Leases(driver.project, after_s=1.5)
    leases.hold(f"unpause:{container}")
    assert leases.armed() == [f"unpause:{container}"]
    leases.release(f"unpause:{container}")
    time.sleep(3.0)  # past the lease: a watchdog still armed would have unpaused it by now
    assert _state(driver, container) == "paused"
