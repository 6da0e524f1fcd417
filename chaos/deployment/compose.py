"""Running Docker Compose on the deployment's files: which compose command, which files, which environment.

- `compose_command()`: `docker compose` (the v2 plugin) when `docker compose version` works, else
  `docker-compose` (v1, Debian's package); the same choice as tests/service/test_compose_prod.py.
- `ComposeProject`: a project name, its files, and the variables compose interpolates (secrets, ports). The
  variables go into the child's environment only, never onto its command line (where `ps` shows them), and
  any of their values that shows up in compose's output is blanked before it is logged or raised.
- Every call has a timeout; compose runs in its own session, so a Ctrl-C at the terminal reaches the caller,
  which decides what to stop (a `subprocess.run` that is interrupted kills its child).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PROD_FILE = REPO / "docker-compose.prod.yml"
CHAOS_FILE = REPO / "docker-compose.chaos.yml"
# Where no registry is reachable: the stand-ins scripts/prepare_docker.py builds, for the production images and
# for the overlay's own (only base images change).
CI_FILES = (REPO / "chaos" / "stack" / "images" / "compose.ci.yml", REPO / "deploy" / "chaos" / "compose.ci.yml")
# What docker-compose.prod.yml refuses to start without (no defaults there).
SECRET_NAMES = ("POSTGRES_PASSWORD", "API_KEY", "JWT_SECRET")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
# Compose's project names: what both v1 and v2 accept unchanged (v1 drops other characters, v2 refuses them).
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DOCKER_TIMEOUT_S = 60.0
REDACTED = "[redacted]"


class ComposeError(RuntimeError):
    """A compose or docker command failed or timed out; the message carries the tail of its output."""


def _works(command: Sequence[str]) -> bool:
    try:
        result = subprocess.run(list(command), capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@functools.cache
def compose_command() -> tuple[str, ...]:
    """`docker compose` where the v2 plugin is installed, else `docker-compose` (v1)."""
    if shutil.which("docker") and _works(["docker", "compose", "version"]):
        return ("docker", "compose")
    if shutil.which("docker-compose") and _works(["docker-compose", "version"]):
        return ("docker-compose",)
    raise ComposeError(
        "neither `docker compose` nor `docker-compose` works here (scripts/prepare_docker.py installs "
        "docker-compose; `make docker-prepare`)"
    )


def check_project_name(name: str) -> str:
    if not PROJECT_NAME.fullmatch(name):
        raise ComposeError(
            f"compose project name {name!r}: use lower-case letters, digits, '-' and '_' (at most 63, first a "
            "letter or digit)"
        )
    return name


def docker(*args: str, timeout: float = DOCKER_TIMEOUT_S) -> str:
    """The output of `docker ARGS...` (the CLI); a ComposeError when it fails or takes longer than `timeout`."""
    try:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ComposeError(f"`docker {' '.join(args)}` took longer than {timeout:.0f}s") from None
    except OSError as error:
        raise ComposeError(f"cannot run docker: {error.strerror}") from None
    if result.returncode != 0:
        raise ComposeError(f"`docker {' '.join(args)}` exited with {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def image_present(reference: str) -> bool:
    try:
        docker("image", "inspect", "--format", "{{.Id}}", reference, timeout=30)
    except ComposeError:
        return False
    return True


@dataclass(frozen=True)
class ComposeProject:
    """One compose project: `compose -p NAME -f FILE... ARGS` with `variables` in its environment."""

    name: str
    files: tuple[Path, ...]
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets among them: never shown
    cwd: Path = REPO

    def __post_init__(self) -> None:
        check_project_name(self.name)

    def arguments(self, *args: str) -> list[str]:
        """What follows the compose command: `-p NAME -f FILE... ARGS` (built without asking which compose is here)."""
        files = [argument for path in self.files for argument in ("-f", str(path))]
        return ["-p", self.name, *files, *args]

    def argv(self, *args: str) -> list[str]:
        return [*compose_command(), *self.arguments(*args)]

    def environment(self) -> dict[str, str]:
        """This process's environment with the project's variables on top (what compose interpolates)."""
        return {**os.environ, **self.variables}

    def redact(self, text: str) -> str:
        """`text` with the value of every secret variable blanked (longest first, so none shows in part)."""
        values = sorted(
            (value for name, value in self.variables.items() if name in SECRET_NAMES and value), key=len, reverse=True
        )
        for value in values:
            text = text.replace(value, REDACTED)
        return text

    def run(
        self, *args: str, timeout: float, check: bool = True, log: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run compose; its output (redacted) is appended to `log` when given. A failure or timeout raises a
        ComposeError when `check`."""
        command = self.argv(*args)
        shown = " ".join(["compose", "-p", self.name, *args])
        try:
            result = subprocess.run(
                command,
                cwd=self.cwd,
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C goes to us; an interrupted run() kills compose
            )
        except subprocess.TimeoutExpired as expired:
            output = _text(expired.stdout) + _text(expired.stderr)
            self._log(log, shown, self.redact(output) + f"\n(timed out after {timeout:.0f}s)\n")
            raise ComposeError(f"`{shown}` took longer than {timeout:.0f}s:\n{self.redact(output)[-3000:]}") from None
        except OSError as error:
            raise ComposeError(f"cannot run {command[0]}: {error.strerror}") from None
        output = self.redact(result.stdout + result.stderr)
        self._log(log, shown, output + f"\n(exit {result.returncode})\n")
        if check and result.returncode != 0:
            raise ComposeError(f"`{shown}` exited with {result.returncode}:\n{output[-3000:]}")
        return subprocess.CompletedProcess(result.args, result.returncode, self.redact(result.stdout), output)

    @staticmethod
    def _log(log: Path | None, shown: str, output: str) -> None:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as file:
                file.write(f"$ {shown}\n{output}")

    # -- what the project has in the engine (by compose's labels) --------------------------------------------
    def container_ids(self, service: str | None = None, *, all: bool = True) -> list[str]:
        filters = ["--filter", f"label={PROJECT_LABEL}={self.name}"]
        if service is not None:
            filters += ["--filter", f"label={SERVICE_LABEL}={service}"]
        return docker("ps", "-q", "--no-trunc", *(["-a"] if all else []), *filters).split()

    def inspect(self, service: str | None = None, *, all: bool = True) -> list[dict[str, Any]]:
        """`docker inspect` of the project's containers (of `service`), by container number."""
        ids = self.container_ids(service, all=all)
        if not ids:
            return []
        inspected: list[dict[str, Any]] = json.loads(docker("inspect", *ids))
        return sorted(inspected, key=lambda item: int(item["Config"]["Labels"].get(NUMBER_LABEL, "0")))

    def resources(self) -> list[str]:
        """Every container, network and volume labelled as this project's ("container NAME", ...)."""
        found = []
        for kind in ("container", "network", "volume"):
            listing = ["ps", "-a"] if kind == "container" else [kind, "ls"]
            names = docker(*listing, "-q", "--filter", f"label={PROJECT_LABEL}={self.name}").split()
            found += [f"{kind} {name}" for name in names]
        return found


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def network_ips(container: Mapping[str, Any]) -> dict[str, str]:
    """Network name → IPv4 address of an inspected container."""
    networks: Mapping[str, Any] = container.get("NetworkSettings", {}).get("Networks") or {}
    return {name: str(settings["IPAddress"]) for name, settings in networks.items() if settings.get("IPAddress")}


def files_for(ci_images: bool) -> tuple[Path, ...]:
    """The production file and the chaos overlay, and the stand-in image overrides when `ci_images`."""
    return (PROD_FILE, CHAOS_FILE, *(CI_FILES if ci_images else ()))


def describe_files(files: Iterable[Path]) -> str:
    return " ".join(f"-f {path.relative_to(REPO) if path.is_relative_to(REPO) else path}" for path in files)
