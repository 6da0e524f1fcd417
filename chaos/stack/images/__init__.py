"""Which container images the Docker backend, the preparation script and the compose CI stage use.

Standard library only, so `python3 -m chaos.stack.images.prepare` can import it before anything is installed.

Each role has the usual public image and a stand-in that `scripts/prepare_docker.py` builds locally from
Debian's packages (for machines that reach no container registry). `resolve()` picks, in order:

1. the image named by the role's environment variable (`RB_POSTGRES_IMAGE`, `RB_REDIS_IMAGE`,
   `RB_PYTHON_IMAGE`, `RB_SERVICE_IMAGE`), used as given;
2. the public image, when it is already present in the engine;
3. the local stand-in, when it is present;
4. the public image (the engine pulls it, which works wherever a registry is reachable).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Role = Literal["postgres", "redis", "python"]

LOCAL_PREFIX = "runbook-local"
# The Debian root filesystem every local stand-in is built on (debootstrap + docker import).
LOCAL_BASE_IMAGE = f"{LOCAL_PREFIX}/debian:bookworm"
# The service image the Docker stack builds from the repo's Dockerfile (docker-compose.prod.yml builds its own).
SERVICE_IMAGE = "executable-runbook:dev"
SERVICE_IMAGE_ENV = "RB_SERVICE_IMAGE"


@dataclass(frozen=True)
class ImageChoice:
    role: Role
    public: str
    local: str
    env: str


IMAGES: dict[Role, ImageChoice] = {
    "postgres": ImageChoice("postgres", "postgres:15", f"{LOCAL_PREFIX}/postgres:15", "RB_POSTGRES_IMAGE"),
    "redis": ImageChoice("redis", "redis:7", f"{LOCAL_PREFIX}/redis:7", "RB_REDIS_IMAGE"),
    # The service image's base (the Dockerfile's BASE_IMAGE build argument).
    "python": ImageChoice("python", "python:3.11-slim", f"{LOCAL_PREFIX}/python:3.11-slim", "RB_PYTHON_IMAGE"),
}

ImagePresent = Callable[[str], bool]


def cli_image_present(image: str) -> bool:
    """Whether the engine has `image`, asked through the docker CLI (False when there is no engine)."""
    try:
        result = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def resolve(role: Role, present: ImagePresent = cli_image_present) -> str:
    """The image to use for `role` (see the module docstring for the order)."""
    choice = IMAGES[role]
    explicit = os.environ.get(choice.env)
    if explicit:
        return explicit
    if present(choice.public):
        return choice.public
    if present(choice.local):
        return choice.local
    return choice.public


def available(role: Role, present: ImagePresent = cli_image_present) -> bool:
    """Whether the image `resolve` picks is already in the engine (so nothing has to be pulled)."""
    return present(resolve(role, present))
