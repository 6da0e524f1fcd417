"""The `docker` fault driver: a compose project's containers, driven through the Docker Engine API.

    driver = DockerDriver(project="rbdeploy")
    replicas = driver.containers("api")            # by compose labels, lowest container-number first
    driver.kill(replicas[0].id)                     # SIGKILL through the engine (see `crash` for a crash)
    driver.disconnect(replicas[1].id, "rbdeploy_backend")
    driver.connect(replicas[1].id, "rbdeploy_backend")   # the aliases it had there come back
    new = driver.clone_with_image(replicas[0].id, "executable-runbook:v2")   # a release, one replica
    driver.scale("api", 3)

Containers are found the way Compose finds them: by the labels `com.docker.compose.project` and
`com.docker.compose.service` (one-off `run` containers excluded), ordered by `com.docker.compose.container-number`.
Nothing here touches a container outside the driver's project.

It speaks HTTP over the engine's Unix socket (httpx), on the versioned path of the API version the engine
reports (`/version`), with a bounded timeout on every call: `stop` and `restart` wait the container's own stop
timeout plus a margin, and the `wait_*` methods poll against a deadline. Every failure is a
`DockerDriverError` saying what was asked and what the engine answered.

`clone_with_image` is how an image tag is deployed to one replica: a new container made from the inspected
configuration of an existing one, with another image, that Compose takes for one of its own (the service's
labels, the next container-number; `docker compose down` removes it) and that Docker's DNS resolves under the
original's aliases on each of its networks (so the balancer's `server-template` on the service name finds it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal as signals
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from conformance.tls import shared_tls_context

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
COMPOSE_LABEL_PREFIX = "com.docker.compose."
# Which container a clone was made from, for people reading `docker inspect` during a game day.
LABEL_CLONED_FROM = "io.executable-runbook.cloned-from"
DEFAULT_SOCKET = "/var/run/docker.sock"
# Docker's own default when neither the container nor the call gives a stop timeout.
DEFAULT_STOP_TIMEOUT_S = 10
# Room beyond a stop timeout for the engine to send SIGKILL, reap the process and answer.
STOP_MARGIN_S = 15.0
POLL_INTERVAL_S = 0.1
# StopTimeout, Healthcheck start periods and the like need at least this API version.
MIN_API_VERSION = (1, 25)
# Networks that take no aliases (aliases exist on user-defined networks only).
NETWORKS_WITHOUT_ALIASES = {"bridge", "host", "none", "default"}

T = TypeVar("T")


class DockerDriverError(Exception):
    """A Docker call that failed: what was asked, and what the engine answered (or why it could not)."""


@dataclass(frozen=True)
class Container:
    """One container as the engine lists it. `running` is false for a paused or restarting container."""

    id: str
    name: str
    image: str  # the reference it was created from (the image ID when that tag now names another image)
    number: int  # com.docker.compose.container-number (0 when absent)
    running: bool
    state: str  # created, running, paused, restarting, removing, exited, dead
    ip: dict[str, str]  # network name -> IPv4 address on it


class DockerDriver:
    """Stop, kill, pause, restart, partition, scale and re-image one compose project's containers."""

    def __init__(self, *, project: str, socket_path: str = DEFAULT_SOCKET, timeout_s: float = 30.0) -> None:
        self.project = project
        self.socket_path = socket_path
        self.timeout_s = timeout_s
        self._client = httpx.Client(
            verify=shared_tls_context(),
            transport=httpx.HTTPTransport(uds=socket_path),
            base_url="http://docker",
            timeout=timeout_s,
        )
        self._prefix: str | None = None
        # (container id, network) -> aliases it had there when `disconnect` took it off.
        self._aliases: dict[tuple[str, str], list[str]] = {}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # -- the engine ---------------------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        """The API version the engine speaks (asked once, on the unversioned `/version`)."""
        return self._api_prefix()[2:]

    def _api_prefix(self) -> str:
        if self._prefix is None:
            answer = self._send("ask the Docker engine its version", "GET", "/version", timeout_s=None)
            version = str(answer.json().get("ApiVersion", ""))
            try:
                parsed = tuple(int(part) for part in version.split("."))
            except ValueError:
                raise DockerDriverError(f"the Docker engine reports API version {version!r}, not a number") from None
            if parsed < MIN_API_VERSION:
                wanted = ".".join(map(str, MIN_API_VERSION))
                raise DockerDriverError(f"the Docker engine speaks API {version}; this driver needs {wanted} or later")
            self._prefix = f"/v{version}"
        return self._prefix

    def request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout_s: float | None = None,
        accept: Iterable[int] = (200, 201, 204, 304),
    ) -> httpx.Response:
        """One call on the versioned API (`path` like "/containers/json"); any other status is an error.

        `what` says what was asked ("stop container x"), for the error message. For calls the driver does not
        wrap (the tests use it to create containers and exec in them)."""
        return self._send(
            what, method, self._api_prefix() + path, params=params, body=body, timeout_s=timeout_s, accept=accept
        )

    def _send(
        self,
        what: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout_s: float | None,
        accept: Iterable[int] = (200, 201, 204, 304),
    ) -> httpx.Response:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            response = self._client.request(
                method, path, params=dict(params or {}), json=body, timeout=httpx.Timeout(timeout)
            )
        except httpx.TimeoutException:
            raise DockerDriverError(f"{what}: the Docker engine did not answer within {timeout:g} s") from None
        except httpx.TransportError as error:
            raise DockerDriverError(f"{what}: {self._unreachable(error)}") from None
        if response.status_code not in set(accept):
            raise DockerDriverError(f"{what}: the Docker engine answered {response.status_code} {_message(response)}")
        return response

    def _unreachable(self, error: httpx.TransportError) -> str:
        if not os.path.exists(self.socket_path):
            return f"the Docker socket {self.socket_path} does not exist (is dockerd running on this host?)"
        if not os.access(self.socket_path, os.R_OK | os.W_OK):
            return f"no permission to use the Docker socket {self.socket_path} (run as root or in group docker)"
        return f"cannot talk to the Docker engine on {self.socket_path}: {error or type(error).__name__}"

    # -- finding containers -------------------------------------------------------------------------------

    def containers(self, service: str, *, all: bool = False) -> list[Container]:
        """The service's containers (running, paused or restarting; with `all`, stopped ones too), by number."""
        filters = {"label": [f"{LABEL_PROJECT}={self.project}", f"{LABEL_SERVICE}={service}"]}
        listed = self.request(
            f"list the containers of service {service!r} in project {self.project!r}",
            "GET",
            "/containers/json",
            params={"all": "1" if all else "0", "filters": json.dumps(filters)},
        ).json()
        found = [_container(item) for item in listed if item.get("Labels", {}).get(LABEL_ONEOFF) != "True"]
        return sorted(found, key=lambda container: (container.number, container.name))

    def container(self, container_id: str) -> Container:
        """One container (by id, id prefix or name), as `containers` would list it."""
        full_id = self.inspect(container_id)["Id"]
        listed = self.request(
            f"look up container {container_id}",
            "GET",
            "/containers/json",
            params={"all": "1", "filters": json.dumps({"id": [full_id]})},
        ).json()
        for item in listed:
            if item["Id"] == full_id:
                return _container(item)
        raise DockerDriverError(f"look up container {container_id}: it was removed meanwhile")

    def inspect(self, container_id: str) -> dict[str, Any]:
        """The engine's whole description of a container (`docker inspect`)."""
        answer: dict[str, Any] = self.request(
            f"inspect container {container_id}", "GET", f"/containers/{container_id}/json"
        ).json()
        return answer

    # -- process faults -----------------------------------------------------------------------------------

    def kill(self, container_id: str, signal: str = "KILL") -> None:
        """Send `signal` through the engine. The engine marks a container it killed as stopped by hand, so no
        restart policy brings it back (`start` does); `crash` is the kill a restart policy answers."""
        self.request(
            f"kill container {container_id} with SIG{signal.removeprefix('SIG')}",
            "POST",
            f"/containers/{container_id}/kill",
            params={"signal": signal},
        )

    def crash(self, container_id: str) -> None:
        """SIGKILL the container's main process from this host, as a crash or the OOM killer would: its
        restart policy applies (`restart: unless-stopped` brings it back), unlike after `kill`.

        Only where the engine's processes are visible: the process must be in the container's cgroup as seen
        from here (never a process of another PID namespace that happens to have the same number)."""
        what = f"crash container {container_id}"
        with _asked(what):
            info = self.inspect(container_id)
        state = info["State"]
        if not state.get("Running") or int(state.get("Pid") or 0) <= 0:
            raise DockerDriverError(f"{what}: it is not running (state {state.get('Status')})")
        pid = int(state["Pid"])
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            cgroups = ""
        if info["Id"] not in cgroups:
            raise DockerDriverError(
                f"{what}: its process {pid} is not visible from here (the engine runs on another host or in "
                "another PID namespace); use kill() and start() instead"
            )
        try:
            os.kill(pid, signals.SIGKILL)
        except ProcessLookupError:
            pass  # it died on its own meanwhile: the outcome asked for
        except PermissionError:
            raise DockerDriverError(f"{what}: not permitted to signal its process {pid} (needs root)") from None

    def stop(self, container_id: str, timeout_s: float | None = None) -> None:
        """SIGTERM (or its StopSignal), SIGKILL after `timeout_s` (default: its StopTimeout); returns stopped."""
        with _asked(f"stop container {container_id}"):
            grace = self._stop_timeout(container_id, timeout_s)
        self.request(
            f"stop container {container_id} (grace {grace} s)",
            "POST",
            f"/containers/{container_id}/stop",
            params={"t": grace},
            timeout_s=grace + STOP_MARGIN_S,
        )

    def start(self, container_id: str) -> None:
        self.request(f"start container {container_id}", "POST", f"/containers/{container_id}/start")

    def restart(self, container_id: str, timeout_s: float | None = None) -> None:
        """Stop as `stop` does, then start again (the same container: its IPs may change, aliases stay)."""
        with _asked(f"restart container {container_id}"):
            grace = self._stop_timeout(container_id, timeout_s)
        self.request(
            f"restart container {container_id} (grace {grace} s)",
            "POST",
            f"/containers/{container_id}/restart",
            params={"t": grace},
            timeout_s=grace + STOP_MARGIN_S,
        )

    def pause(self, container_id: str) -> None:
        """Freeze every process (cgroup freezer): connections stay open, nothing answers."""
        self.request(f"pause container {container_id}", "POST", f"/containers/{container_id}/pause")

    def unpause(self, container_id: str) -> None:
        self.request(f"unpause container {container_id}", "POST", f"/containers/{container_id}/unpause")

    def _stop_timeout(self, container_id: str, timeout_s: float | None) -> int:
        if timeout_s is not None:
            return max(0, round(timeout_s))
        configured = self.inspect(container_id)["Config"].get("StopTimeout")
        return DEFAULT_STOP_TIMEOUT_S if configured is None else int(configured)

    # -- network faults -----------------------------------------------------------------------------------

    def disconnect(self, container_id: str, network: str) -> None:
        """Take the container off `network`, remembering its aliases there for `connect`."""
        with _asked(f"disconnect container {container_id} from network {network}"):
            info = self.inspect(container_id)
        endpoint = info["NetworkSettings"]["Networks"].get(network)
        if endpoint is None:
            attached = ", ".join(sorted(info["NetworkSettings"]["Networks"])) or "none"
            raise DockerDriverError(
                f"disconnect container {container_id} from network {network}: it is not on it (on: {attached})"
            )
        self._aliases[(info["Id"], network)] = _own_aliases(endpoint, info["Id"])
        self.request(
            f"disconnect container {container_id} from network {network}",
            "POST",
            f"/networks/{network}/disconnect",
            body={"Container": info["Id"], "Force": False},
        )

    def connect(self, container_id: str, network: str, aliases: list[str] | None = None) -> None:
        """Put the container on `network` with `aliases` (default: those it had when `disconnect` took it off)."""
        with _asked(f"connect container {container_id} to network {network}"):
            full_id = self.inspect(container_id)["Id"]
        if aliases is None:
            aliases = self._aliases.get((full_id, network), [])
        self.request(
            f"connect container {container_id} to network {network} (aliases {', '.join(aliases) or 'none'})",
            "POST",
            f"/networks/{network}/connect",
            body={"Container": full_id, "EndpointConfig": _endpoint(network, aliases)},
        )
        self._aliases.pop((full_id, network), None)

    # -- waiting ------------------------------------------------------------------------------------------

    def wait_running(self, container_id: str, timeout_s: float = 60.0) -> Container:
        """Until the container runs (not paused, not restarting); an error after `timeout_s`."""
        return self._wait(
            container_id,
            "running",
            timeout_s,
            lambda state: bool(state.get("Running")) and not state.get("Paused") and not state.get("Restarting"),
        )

    def wait_exited(self, container_id: str, timeout_s: float = 60.0) -> Container:
        """Until the container has stopped (exited or dead, not restarting); an error after `timeout_s`."""
        return self._wait(container_id, "exited", timeout_s, lambda state: state.get("Status") in ("exited", "dead"))

    def wait_healthy(self, container_id: str, timeout_s: float = 90.0) -> Container:
        """Until its health check passes; an error at once if it has none, else after `timeout_s`."""
        if not self._has_healthcheck(container_id):
            raise DockerDriverError(f"wait for container {container_id} to be healthy: it has no health check")
        return self._wait(
            container_id,
            "healthy",
            timeout_s,
            lambda state: bool(state.get("Running")) and state.get("Health", {}).get("Status") == "healthy",
        )

    def wait_restarted(self, container_id: str, since_restart_count: int, timeout_s: float = 60.0) -> Container:
        """Until its restart policy has restarted it past `since_restart_count` and it runs again."""
        deadline = time.monotonic() + timeout_s
        while True:
            with _asked(f"wait for container {container_id} to be restarted by its policy"):
                info = self.inspect(container_id)
            state = info["State"]
            restarted = int(info.get("RestartCount", 0)) > since_restart_count
            if restarted and state.get("Running") and not state.get("Restarting"):
                return self.container(container_id)
            if time.monotonic() >= deadline:
                raise DockerDriverError(
                    f"wait for container {container_id} to be restarted by its policy: after {timeout_s:g} s its "
                    f"restart count is {info.get('RestartCount')} and it is {_describe(state)}"
                )
            time.sleep(POLL_INTERVAL_S)

    def _has_healthcheck(self, container_id: str) -> bool:
        test = (self.inspect(container_id)["Config"].get("Healthcheck") or {}).get("Test") or []
        return bool(test) and test != ["NONE"]

    def _wait(
        self, container_id: str, goal: str, timeout_s: float, reached: Callable[[dict[str, Any]], bool]
    ) -> Container:
        deadline = time.monotonic() + timeout_s
        while True:
            with _asked(f"wait for container {container_id} to be {goal}"):
                state = self.inspect(container_id)["State"]
            if reached(state):
                return self.container(container_id)
            if time.monotonic() >= deadline:
                raise DockerDriverError(
                    f"wait for container {container_id} to be {goal}: after {timeout_s:g} s it is {_describe(state)}"
                )
            time.sleep(POLL_INTERVAL_S)

    # -- replicas and images ------------------------------------------------------------------------------

    def clone_with_image(self, container_id: str, image: str, *, name_suffix: str = "") -> Container:
        """Create and start a copy of the container running `image`, as the next replica of its service.

        Copied: what the container set beyond its image — Env, Cmd/Entrypoint, User, WorkingDir, Healthcheck,
        StopSignal, labels (compose's all kept, container-number the service's highest + 1), StopTimeout — so
        the new image's own defaults apply where the original only inherited its image's; and the whole
        HostConfig (mounts, tmpfs, read-only root, capabilities, security options, memory/swap/pids limits,
        restart policy, init, log driver). It joins every network of the original with the aliases it has there
        (less its own container id), without the original's fixed addresses. Named after the compose pattern:
        PROJECT_SERVICE_N (with "-" when the original's name uses it), then `_name_suffix` if given.
        Returns when started (see `wait_running` / `wait_healthy`); a clone that fails to start is removed."""
        with _asked(f"clone container {container_id} with image {image}"):
            return self._clone(container_id, image, name_suffix)

    def _clone(self, container_id: str, image: str, name_suffix: str) -> Container:
        original = self.inspect(container_id)
        labels = original["Config"].get("Labels") or {}
        service = labels.get(LABEL_SERVICE)
        if labels.get(LABEL_PROJECT) != self.project or not service:
            raise DockerDriverError(
                f"it is not a service container of project {self.project!r} "
                f"(labels project={labels.get(LABEL_PROJECT)!r}, service={service!r})"
            )
        number = max((c.number for c in self.containers(service, all=True)), default=0) + 1
        base_image = self._image_config(original["Image"])
        config = _cloned_config(original, base_image, image)
        config["Labels"][LABEL_NUMBER] = str(number)
        config["Labels"][LABEL_CLONED_FROM] = original["Id"]

        networks = original["NetworkSettings"].get("Networks") or {}
        host_config = {
            key: value for key, value in original["HostConfig"].items() if key not in ("ContainerIDFile", "Links")
        }
        mode = str(host_config.get("NetworkMode") or "default")
        user_networks = [name for name in networks if name not in NETWORKS_WITHOUT_ALIASES]
        first = mode if mode in networks else (user_networks[0] if user_networks else None)
        if first is not None and mode not in networks:
            host_config["NetworkMode"] = first
        config["HostConfig"] = host_config
        if first is not None:
            aliases = _own_aliases(networks[first], original["Id"])
            config["NetworkingConfig"] = {"EndpointsConfig": {first: _endpoint(first, aliases)}}

        separator = (
            "-" if original["Name"].lstrip("/") == f"{self.project}-{service}-{labels.get(LABEL_NUMBER)}" else "_"
        )
        name = separator.join([self.project, service, str(number), *([name_suffix] if name_suffix else [])])
        created = self.request(
            f"create {name}",
            "POST",
            "/containers/create",
            params={"name": name},
            body=config,
        ).json()
        new_id = str(created["Id"])
        try:
            # API < 1.44 takes one network at creation; the rest are joined before the start, so the
            # process never runs without them.
            for network, endpoint in networks.items():
                if network != first and network not in ("host", "none"):
                    self.request(
                        f"connect the new {name} to network {network}",
                        "POST",
                        f"/networks/{network}/connect",
                        body={
                            "Container": new_id,
                            "EndpointConfig": _endpoint(network, _own_aliases(endpoint, original["Id"])),
                        },
                    )
            self.start(new_id)
        except DockerDriverError:
            self._remove_quietly(new_id)
            raise
        return self.container(new_id)

    def scale(self, service: str, replicas: int, *, image: str | None = None) -> list[Container]:
        """Make the service have `replicas` containers: clones of its lowest-numbered running replica (with
        `image`, default the one it runs), each waited for until running; or stop (gracefully, each its own
        StopTimeout) and remove the highest-numbered ones. Returns the service's containers afterwards."""
        with _asked(f"scale service {service!r} of project {self.project!r} to {replicas}"):
            return self._scale(service, replicas, image)

    def _scale(self, service: str, replicas: int, image: str | None) -> list[Container]:
        if replicas < 0:
            raise DockerDriverError("a replica count is never negative")
        current = self.containers(service)
        if len(current) < replicas:
            templates = [container for container in current if container.running]
            if not templates:
                raise DockerDriverError(f"no running replica to clone ({len(current)} present, none running)")
            template = templates[0]
            wanted = image or str(self.inspect(template.id)["Config"]["Image"])
            for _ in range(replicas - len(current)):
                clone = self.clone_with_image(template.id, wanted)
                self.wait_running(clone.id, timeout_s=self.timeout_s)
        else:
            for container in sorted(current, key=lambda c: c.number, reverse=True)[: len(current) - replicas]:
                self.stop(container.id)
                self.remove(container.id)
        return self.containers(service)

    def remove(self, container_id: str, force: bool = False) -> None:
        """Remove the container and its anonymous volumes (named volumes stay); `force` kills a running one."""
        self.request(
            f"remove container {container_id}",
            "DELETE",
            f"/containers/{container_id}",
            params={"force": "1" if force else "0", "v": "1"},
        )

    def _remove_quietly(self, container_id: str) -> None:
        # The error that made us clean up is the one worth reporting.
        with contextlib.suppress(DockerDriverError):
            self.remove(container_id, force=True)

    def image_exists(self, ref: str) -> bool:
        answer = self.request(f"look up image {ref}", "GET", f"/images/{ref}/json", accept=(200, 404))
        return answer.status_code == 200

    def tag(self, source_ref: str, new_ref: str) -> None:
        """Give the image `source_ref` names the name `new_ref` too (`docker tag`)."""
        repository, tag = _split_ref(new_ref)
        self.request(
            f"tag image {source_ref} as {new_ref}",
            "POST",
            f"/images/{source_ref}/tag",
            params={"repo": repository, "tag": tag},
        )

    def _image_config(self, image_id: str) -> dict[str, Any]:
        """The image's own Config, to tell what a container set from what it inherited; {} when it is gone."""
        answer = self.request(f"inspect image {image_id}", "GET", f"/images/{image_id}/json", accept=(200, 404))
        if answer.status_code == 404:
            return {}
        config: dict[str, Any] = answer.json().get("Config") or {}
        return config


@contextlib.contextmanager
def _asked(what: str) -> Iterator[None]:
    """Say what was asked in front of the error of a step it took."""
    try:
        yield
    except DockerDriverError as error:
        raise DockerDriverError(f"{what}: {error}") from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", "")).strip() or response.reason_phrase
    except (ValueError, AttributeError):
        return response.text.strip()[:500] or response.reason_phrase


def _container(item: Mapping[str, Any]) -> Container:
    labels = item.get("Labels") or {}
    try:
        number = int(labels.get(LABEL_NUMBER, 0))
    except ValueError:
        number = 0
    networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
    state = str(item.get("State", ""))
    return Container(
        id=str(item["Id"]),
        name=str((item.get("Names") or ["/" + item["Id"][:12]])[0]).lstrip("/"),
        image=str(item.get("Image", "")),
        number=number,
        running=state == "running",
        state=state,
        ip={name: str(net["IPAddress"]) for name, net in networks.items() if net.get("IPAddress")},
    )


def _describe(state: Mapping[str, Any]) -> str:
    described = str(state.get("Status", "unknown"))
    if state.get("Status") in ("exited", "dead"):
        described += f" (exit code {state.get('ExitCode')}{', OOM-killed' if state.get('OOMKilled') else ''})"
    if state.get("Error"):
        described += f", error: {state['Error']}"
    health = state.get("Health")
    if health:
        described += f", health {health.get('Status')}"
    return described


def _own_aliases(endpoint: Mapping[str, Any], container_id: str) -> list[str]:
    """A container's aliases on a network, less its id (the engine adds that by itself to every container)."""
    own = {container_id, container_id[:12]}
    return [alias for alias in endpoint.get("Aliases") or [] if alias not in own]


def _endpoint(network: str, aliases: list[str]) -> dict[str, Any]:
    return {} if network in NETWORKS_WITHOUT_ALIASES or not aliases else {"Aliases": aliases}


def _split_ref(ref: str) -> tuple[str, str]:
    """ "registry:5000/name:tag" -> ("registry:5000/name", "tag"); no tag means "latest"."""
    if "@" in ref:
        raise DockerDriverError(f"tag an image as {ref}: a digest is not a tag")
    repository, _, tag = ref.rpartition(":")
    if not repository or "/" in tag:
        return ref, "latest"
    return repository, tag


def _same_or_none(value: T, inherited: T) -> T | None:
    return None if value == inherited else value


def _cloned_config(original: Mapping[str, Any], base: Mapping[str, Any], image: str) -> dict[str, Any]:
    """The create body for a clone: what `original` set beyond its image `base`, with `image`."""
    source = original["Config"]
    image_env = set(base.get("Env") or [])
    entrypoint_inherited = source.get("Entrypoint") == base.get("Entrypoint")
    # Docker drops the image's Cmd when a container sets its own Entrypoint, so a Cmd equal to the image's only
    # came from the image when the Entrypoint did too.
    cmd_inherited = entrypoint_inherited and source.get("Cmd") == base.get("Cmd")
    image_labels = base.get("Labels") or {}
    labels = {
        key: value
        for key, value in (source.get("Labels") or {}).items()
        if key.startswith(COMPOSE_LABEL_PREFIX) or image_labels.get(key) != value
    }
    config: dict[str, Any] = {
        "Image": image,
        "Env": [entry for entry in source.get("Env") or [] if entry not in image_env],
        "Labels": labels,
        "Tty": bool(source.get("Tty")),
        "OpenStdin": bool(source.get("OpenStdin")),
        "StdinOnce": bool(source.get("StdinOnce")),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "ExposedPorts": {
            port: {} for port in source.get("ExposedPorts") or {} if port not in (base.get("ExposedPorts") or {})
        },
        "Volumes": {path: {} for path in source.get("Volumes") or {} if path not in (base.get("Volumes") or {})},
    }
    if not entrypoint_inherited:
        config["Entrypoint"] = source.get("Entrypoint")
    if not cmd_inherited:
        config["Cmd"] = source.get("Cmd")
    for key in ("User", "WorkingDir", "StopSignal", "Healthcheck"):
        value = _same_or_none(source.get(key), base.get(key))
        if value not in (None, ""):
            config[key] = value
    if source.get("StopTimeout") is not None:
        config["StopTimeout"] = source["StopTimeout"]
    # The engine's default hostname is the container's short id: a copied one would name the original.
    hostname = source.get("Hostname") or ""
    if hostname and not original["Id"].startswith(hostname):
        config["Hostname"] = hostname
    if source.get("Domainname"):
        config["Domainname"] = source["Domainname"]
    return config
