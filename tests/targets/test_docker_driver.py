"""The docker fault driver against a real engine: a throwaway compose-like project, never anyone else's.

Two `web` replicas (the python image running `python -m http.server 8000`) carry the labels Compose v1.29
puts on a service's containers, for a project name of their own, with the prod file's security settings
(read-only root, no capabilities, no-new-privileges, memory/swap/pids limits) and a restart policy; they sit
on an internal network and a normal one with the alias `web` on both plus one alias per network
(`web-inner`, `web-outer`), so what Docker's DNS answers for each name says which network it came from.
A probe container on both networks resolves names (through the exec API) the way HAProxy's
`server-template` does. Everything the module makes carries a label of its run and is removed at the end,
whatever happened.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaos.stack import images
from chaos.targets.docker_driver import (
    LABEL_CLONED_FROM,
    LABEL_NUMBER,
    Container,
    DockerDriver,
    DockerDriverError,
)

pytestmark = pytest.mark.docker

LABEL_RUN = "io.executable-runbook.test-run"
SERVICE = "web"
STOP_TIMEOUT_S = 3
DNS_TIMEOUT_S = 10.0
# Inside the containers: the one writable place on their read-only root.
CONTAINER_TMP = "/tmp"  # noqa: S108
# Compose v1.29's labels on a service container (seen with `docker inspect`), less the number.
COMPOSE_VERSION = "1.29.2"
SECURITY_KEYS = (
    "ReadonlyRootfs",
    "CapDrop",
    "SecurityOpt",
    "Memory",
    "MemorySwap",
    "PidsLimit",
    "Tmpfs",
    "Init",
    "RestartPolicy",
)


@dataclass
class World:
    driver: DockerDriver
    project: str
    image: str
    inner: str  # internal network
    outer: str
    probe: str  # container id
    workdir: Path
    tag: str  # a second tag of `image`, made by the clone test

    def aliases(self, container_id: str, network: str) -> set[str]:
        info = self.driver.inspect(container_id)
        endpoint = info["NetworkSettings"]["Networks"][network]
        return set(endpoint.get("Aliases") or []) - {info["Id"][:12]}

    def resolve(self, name: str) -> set[str]:
        """The IPv4 addresses Docker's DNS gives the probe for `name` (empty when it has none)."""
        code = (
            "import socket\n"
            "try:\n"
            f"    print(' '.join(sorted({{a[4][0] for a in socket.getaddrinfo({name!r}, None, socket.AF_INET)}})))\n"
            "except socket.gaierror:\n"
            "    print('')\n"
        )
        created = self.driver.request(
            "create a DNS lookup in the probe",
            "POST",
            f"/containers/{self.probe}/exec",
            body={"Cmd": ["python", "-c", code], "AttachStdout": True, "AttachStderr": True, "Tty": True},
        ).json()
        output = self.driver.request(
            "run the DNS lookup", "POST", f"/exec/{created['Id']}/start", body={"Detach": False, "Tty": True}
        ).text
        exit_code = self.driver.request("read the lookup's exit code", "GET", f"/exec/{created['Id']}/json").json()
        assert exit_code["ExitCode"] == 0, output
        return set(output.split())

    def wait_resolves(self, name: str, expected: set[str]) -> None:
        deadline = time.monotonic() + DNS_TIMEOUT_S
        while (found := self.resolve(name)) != expected:
            assert time.monotonic() < deadline, f"{name} resolves to {found}, not {expected}"
            time.sleep(0.1)


def _compose_labels(project: str, number: int, workdir: Path) -> dict[str, str]:
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": SERVICE,
        "com.docker.compose.container-number": str(number),
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.version": COMPOSE_VERSION,
        "com.docker.compose.config-hash": uuid.uuid4().hex * 2,
        "com.docker.compose.project.working_dir": str(workdir),
        "com.docker.compose.project.config_files": "docker-compose.yml",
    }


def _create(driver: DockerDriver, name: str, body: dict[str, Any], networks: dict[str, list[str]]) -> str:
    """Create and start a container on `networks` (name -> aliases), the first at creation like compose."""
    first, *rest = networks
    body["HostConfig"]["NetworkMode"] = first
    body["NetworkingConfig"] = {"EndpointsConfig": {first: {"Aliases": networks[first]}}}
    container_id = str(
        driver.request(f"create {name}", "POST", "/containers/create", params={"name": name}, body=body).json()["Id"]
    )
    for network in rest:
        driver.connect(container_id, network, networks[network])
    driver.start(container_id)
    return container_id


def _web(world_project: str, number: int, image: str, run: str, workdir: Path) -> dict[str, Any]:
    return {
        "Image": image,
        "Cmd": ["python", "-m", "http.server", "8000"],
        "User": "65534:65534",
        "WorkingDir": CONTAINER_TMP,
        "Env": ["RB_TEST_MARK=original"],
        "Labels": {**_compose_labels(world_project, number, workdir), LABEL_RUN: run},
        "StopTimeout": STOP_TIMEOUT_S,
        "ExposedPorts": {"8000/tcp": {}},
        "Healthcheck": {
            "Test": [
                "CMD",
                "python",
                "-c",
                "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=1)",
            ],
            "Interval": 300_000_000,
            "Timeout": 2_000_000_000,
            "Retries": 3,
        },
        "HostConfig": {
            "ReadonlyRootfs": True,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "Memory": 96 * 1024 * 1024,
            "MemorySwap": 96 * 1024 * 1024,
            "PidsLimit": 32,
            "Tmpfs": {CONTAINER_TMP: "size=16m"},
            # SIGTERM reaches http.server (not PID 1), so a stop is graceful, not a SIGKILL after the timeout.
            "Init": True,
            "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        },
    }


def _cleanup(driver: DockerDriver, run: str, networks: list[str], tags: list[str]) -> None:
    leftovers = driver.request(
        "list the test's containers",
        "GET",
        "/containers/json",
        params={"all": "1", "filters": f'{{"label": ["{LABEL_RUN}={run}"]}}'},
    ).json()
    for item in leftovers:
        driver.remove(item["Id"], force=True)
    for network in networks:
        driver.request(f"remove network {network}", "DELETE", f"/networks/{network}", accept=(204, 404))
    for tag in tags:
        driver.request(f"untag {tag}", "DELETE", f"/images/{tag}", accept=(200, 404))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    run = uuid.uuid4().hex[:10]
    project = f"rbdd{run}"
    driver = DockerDriver(project=project, timeout_s=30)
    inner, outer = f"{project}_inner", f"{project}_outer"
    workdir = tmp_path_factory.mktemp("docker-driver")
    tags = [f"rb-docker-driver-test:{run}"]
    try:
        image = images.resolve("python", driver.image_exists)
        for network, internal in ((inner, True), (outer, False)):
            driver.request(
                f"create network {network}",
                "POST",
                "/networks/create",
                body={"Name": network, "Internal": internal, "CheckDuplicate": True, "Labels": {LABEL_RUN: run}},
            )
        for number in (1, 2):
            _create(
                driver,
                f"{project}_{SERVICE}_{number}",
                _web(project, number, image, run, workdir),
                {inner: [SERVICE, "web-inner"], outer: [SERVICE, "web-outer"]},
            )
        probe = _create(
            driver,
            f"{project}_probe",
            {
                "Image": image,
                "Cmd": ["python", "-c", "import time; time.sleep(600)"],
                "Labels": {LABEL_RUN: run},
                "HostConfig": {"Init": True, "ReadonlyRootfs": True, "CapDrop": ["ALL"]},
            },
            {inner: [], outer: []},
        )
        yield World(driver, project, image, inner, outer, probe, workdir, tags[0])
    finally:
        _cleanup(driver, run, [inner, outer], tags)
        driver.close()


def _numbers(containers: list[Container]) -> list[int]:
    return [container.number for container in containers]


def test_containers_are_found_by_compose_labels_in_number_order(world: World) -> None:
    found = world.driver.containers(SERVICE)
    assert _numbers(found) == [1, 2]
    assert [c.name for c in found] == [f"{world.project}_{SERVICE}_1", f"{world.project}_{SERVICE}_2"]
    for container in found:
        assert container.image == world.image
        assert set(container.ip) == {world.inner, world.outer}
        world.driver.wait_healthy(container.id, timeout_s=20)
    # Another project's driver sees none of them; nor does another service name.
    with DockerDriver(project=world.project + "x") as other:
        assert other.containers(SERVICE, all=True) == []
    assert world.driver.containers("probe", all=True) == []
    # On several networks, Docker's DNS answers from one of them (the first with the name), never a mix.
    assert world.resolve(SERVICE) in ({c.ip[world.inner] for c in found}, {c.ip[world.outer] for c in found})
    world.wait_resolves("web-inner", {c.ip[world.inner] for c in found})


def test_process_faults_change_the_state(world: World) -> None:
    driver = world.driver
    target = driver.containers(SERVICE)[1].id

    driver.kill(target)
    exited = driver.wait_exited(target, timeout_s=10)
    assert (exited.state, exited.running) == ("exited", False)
    assert driver.inspect(target)["State"]["ExitCode"] == 137
    driver.start(target)
    assert driver.wait_running(target, timeout_s=10).running

    # A crash (not through the engine) is what the restart policy answers.
    count = int(driver.inspect(target)["RestartCount"])
    old_pid = driver.inspect(target)["State"]["Pid"]
    driver.crash(target)
    back = driver.wait_restarted(target, count, timeout_s=20)
    assert back.running
    assert driver.inspect(target)["State"]["Pid"] != old_pid

    began = time.monotonic()
    driver.stop(target)
    took = time.monotonic() - began
    state = driver.inspect(target)["State"]
    assert state["Status"] == "exited"
    # 143 = SIGTERM: stopped gracefully, well before the StopTimeout's SIGKILL.
    assert state["ExitCode"] == 143
    assert took < STOP_TIMEOUT_S
    driver.start(target)
    driver.wait_running(target, timeout_s=10)

    driver.pause(target)
    paused = driver.container(target)
    assert (paused.state, paused.running) == ("paused", False)
    with pytest.raises(DockerDriverError, match=r"wait for container \w+ to be running: after 0\.3 s it is paused"):
        driver.wait_running(target, timeout_s=0.3)
    driver.unpause(target)
    assert driver.wait_running(target, timeout_s=10).state == "running"

    started = driver.inspect(target)["State"]["StartedAt"]
    driver.restart(target)
    driver.wait_running(target, timeout_s=10)
    assert driver.inspect(target)["State"]["StartedAt"] != started
    driver.wait_healthy(target, timeout_s=20)
    assert _numbers(driver.containers(SERVICE)) == [1, 2]


def test_disconnect_then_connect_restores_the_aliases(world: World) -> None:
    driver = world.driver
    first, second = driver.containers(SERVICE)
    before = world.aliases(first.id, world.outer)
    assert before == {SERVICE, "web-outer"}

    driver.disconnect(first.id, world.outer)
    assert set(driver.container(first.id).ip) == {world.inner}
    world.wait_resolves("web-outer", {second.ip[world.outer]})
    with pytest.raises(DockerDriverError, match=f"from network {world.outer}: it is not on it"):
        driver.disconnect(first.id, world.outer)

    driver.connect(first.id, world.outer)
    assert world.aliases(first.id, world.outer) == before
    rejoined = driver.container(first.id)
    world.wait_resolves("web-outer", {rejoined.ip[world.outer], second.ip[world.outer]})


def test_clone_with_image_is_a_replica_compose_and_dns_know(world: World) -> None:
    driver = world.driver
    original = driver.containers(SERVICE)[0]
    tag = world.tag
    assert not driver.image_exists(tag)
    driver.tag(world.image, tag)
    assert driver.image_exists(tag)

    # A tag that does not exist: the engine's answer, and nothing left behind.
    with pytest.raises(DockerDriverError, match=r"with image rb-no-such-image:v0: create .* 404 .*rb-no-such-image"):
        driver.clone_with_image(original.id, "rb-no-such-image:v0")
    assert _numbers(driver.containers(SERVICE, all=True)) == [1, 2]

    clone = driver.clone_with_image(original.id, tag, name_suffix="v2")
    assert (clone.name, clone.number, clone.image) == (f"{world.project}_{SERVICE}_3_v2", 3, tag)
    healthy = driver.wait_healthy(clone.id, timeout_s=20)
    assert healthy.running
    assert set(healthy.ip) == {world.inner, world.outer}

    mine, theirs = driver.inspect(clone.id), driver.inspect(original.id)
    compose = {k: v for k, v in theirs["Config"]["Labels"].items() if k.startswith("com.docker.compose.")}
    assert {k: v for k, v in mine["Config"]["Labels"].items() if k in compose} == {**compose, LABEL_NUMBER: "3"}
    assert mine["Config"]["Labels"][LABEL_CLONED_FROM] == original.id
    for key in SECURITY_KEYS:
        assert mine["HostConfig"][key] == theirs["HostConfig"][key], key
    for key in ("User", "WorkingDir", "Cmd", "Healthcheck", "StopTimeout"):
        assert mine["Config"][key] == theirs["Config"][key], key
    assert "RB_TEST_MARK=original" in mine["Config"]["Env"]
    assert mine["Config"]["Hostname"] == clone.id[:12]
    for network in (world.inner, world.outer):
        assert world.aliases(clone.id, network) == world.aliases(original.id, network)

    replicas = driver.containers(SERVICE)
    assert _numbers(replicas) == [1, 2, 3]
    world.wait_resolves("web-inner", {c.ip[world.inner] for c in replicas})
    world.wait_resolves("web-outer", {c.ip[world.outer] for c in replicas})


def test_scale_up_clones_the_lowest_and_down_removes_the_highest(world: World) -> None:
    driver = world.driver
    before = driver.containers(SERVICE)
    count, top = len(before), max(_numbers(before))
    lowest = before[0]

    grown = driver.scale(SERVICE, count + 2)
    assert _numbers(grown) == [*_numbers(before), top + 1, top + 2]
    added = grown[count:]
    assert all(c.running and c.image == lowest.image for c in added)
    assert all(driver.inspect(c.id)["Config"]["Labels"][LABEL_CLONED_FROM] == lowest.id for c in added)
    world.wait_resolves("web-inner", {c.ip[world.inner] for c in grown})

    shrunk = driver.scale(SERVICE, count)
    assert _numbers(shrunk) == _numbers(before)
    assert _numbers(driver.containers(SERVICE, all=True)) == _numbers(before)  # removed, not just stopped
    world.wait_resolves("web-inner", {c.ip[world.inner] for c in shrunk})
    with pytest.raises(DockerDriverError, match="never negative"):
        driver.scale(SERVICE, -1)


def _compose() -> list[str] | None:
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_compose_down_removes_the_clones_too(world: World) -> None:
    driver = world.driver
    assert len(driver.containers(SERVICE, all=True)) >= 3, "expected the clone of the clone test"
    command = _compose()
    if command is None:
        for container in driver.containers(SERVICE, all=True):
            driver.remove(container.id, force=True)
    else:
        # The project's compose file: the service by name, the networks as external (the fixture owns them).
        (world.workdir / "docker-compose.yml").write_text(
            f"services:\n  {SERVICE}:\n    image: {world.image}\n    networks: [inner, outer]\n"
            f"networks:\n  inner:\n    external: true\n    name: {world.inner}\n"
            f"  outer:\n    external: true\n    name: {world.outer}\n"
        )
        done = subprocess.run(
            [*command, "-p", world.project, "down", "--timeout", str(STOP_TIMEOUT_S)],
            cwd=world.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert driver.containers(SERVICE, all=True) == []


def test_an_engine_that_is_missing_or_silent_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sock"
    with (
        DockerDriver(project="rbdd-none", socket_path=str(missing)) as driver,
        pytest.raises(DockerDriverError, match=f"the Docker socket {missing} does not exist") as raised,
    ):
        driver.containers(SERVICE)
    # No httpx traceback behind it.
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__

    # A socket that takes connections and never answers: the call ends at its timeout.
    silent = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(silent))
        listener.listen(8)
        began = time.monotonic()
        with (
            DockerDriver(project="rbdd-none", socket_path=str(silent), timeout_s=0.5) as driver,
            pytest.raises(DockerDriverError, match=r"ask the Docker engine its version: .* within 0\.5 s"),
        ):
            driver.containers(SERVICE)
        assert time.monotonic() - began < 3
