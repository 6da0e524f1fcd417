"""The throwaway stack tests, conformance and drills run against, and the factory that picks its backend.

    with make_stack("local") as stack:      # or "docker", or "auto"; default $STACK_BACKEND, else "local"
        stack.api_url                       # the service on 127.0.0.1
        stack.proxy("postgres").add_toxic(type="latency", attributes={"latency": 300})
        stack.pause_dependency("redis")

- base.py: `StackBackend`, the contract (with its declared capabilities) and `StackEndpoints`.
- local.py: `LocalStack`, local processes; docker.py: `DockerStack`, containers (Testcontainers); images/: the
  images the Docker backend runs and the Dockerfiles of their local stand-ins.
- servers.py: throwaway PostgreSQL and Redis servers; service.py: the service as a subprocess;
  migrations.py: alembic, as the runbook runs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from chaos.stack.base import Progress, StackBackend

Backend = Literal["local", "docker"]
BACKEND_CHOICES = ("local", "docker", "auto")
STACK_BACKEND_ENV = "STACK_BACKEND"


def requested_backend(choice: str | None = None) -> str:
    """The backend asked for, before "auto" is probed: `choice`, else $STACK_BACKEND, else "local"."""
    return choice or os.environ.get(STACK_BACKEND_ENV) or "local"


def resolve_backend(choice: str | None = None) -> tuple[Backend, str]:
    """The backend to run and why: the one asked for (`requested_backend`); "auto" means docker when a
    Docker engine answers and the images it needs are present (nothing to pull), else local."""
    choice = requested_backend(choice)
    if choice not in BACKEND_CHOICES:
        raise ValueError(f"unknown stack backend {choice!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if choice == "local":
        return "local", "local processes (asked for)"
    if choice == "docker":
        return "docker", "Docker containers (asked for)"
    try:
        from chaos.stack.docker import docker_status
    except ImportError as error:  # the harness extra (testcontainers) is not installed
        return "local", f"local processes (auto: the Docker backend cannot load: {error})"
    usable, reason = docker_status()
    if usable:
        return "docker", f"Docker containers (auto: {reason})"
    return "local", f"local processes (auto: {reason})"


def make_stack(
    backend: str | None = None,
    *,
    workers: int = 1,
    api_port: int | None = None,
    service_env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> StackBackend:
    """A stack on the chosen backend (see `resolve_backend`), not yet started. `options` go to that backend's
    class: `LocalStack` (fault_proxy, toxiproxy_url, application, proxy_api_listen) or `DockerStack`
    (proxy_api_port, postgres_image, redis_image, service_image, python_image)."""
    chosen, reason = resolve_backend(backend)
    if progress is not None:
        progress(f"backend: {reason}")
    if chosen == "docker":
        from chaos.stack.docker import DockerStack

        return DockerStack(workers=workers, api_port=api_port, service_env=service_env, progress=progress, **options)
    from chaos.stack.local import LocalStack

    return LocalStack(workers=workers, api_port=api_port, service_env=service_env, progress=progress, **options)
