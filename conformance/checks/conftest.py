"""Fixtures of the conformance checks: the target (embedded stack by default, or --base-url).

The embedded stack runs on the backend `--backend` names: `local` (processes, the default), `docker`
(containers: chaos.stack.docker) or `auto` (docker when a Docker engine answers and its images are present);
without the option, $STACK_BACKEND, else local. A `--base-url` target is prechecked first (conformance.target
.precheck: it answers, it accepts the key), unless `python -m conformance` did it already (`--prechecked`).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator

import pytest

from chaos.stack import BACKEND_CHOICES, STACK_BACKEND_ENV, make_stack, resolve_backend
from conformance.assertions import eventually
from conformance.target import EMBEDDED_SERVICE_ENV, CouldNotRun, Target, precheck

pytest_plugins = ["conformance.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conformance").addoption(
        "--backend",
        choices=BACKEND_CHOICES,
        default=None,
        help=f"where the embedded stack runs: local processes, docker containers, or auto (docker when an engine "
        f"answers and the images are present); default ${STACK_BACKEND_ENV}, else local",
    )


def _healthy(target: Target) -> bool:
    """Every worker ready, with rate limits on their configured backend (new connections reach both workers)."""
    backend = target.controlled.service_env.get("RATE_LIMIT_BACKEND", "redis")
    for _ in range(4):
        with target.client(timeout=2) as client:
            response = client.get("/health/ready")
        if response.status_code != 200 or response.json().get("rate_limit_backend") != backend:
            return False
    return True


@pytest.fixture(autouse=True)
def stack_healthy_again(request: pytest.FixtureRequest, target: Target) -> Iterator[None]:
    """A check that breaks the stack leaves it healthy for the next one (and starts from healthy)."""
    if target.stack is None or request.node.get_closest_marker("needs_control") is None:
        yield
        return
    eventually(lambda: _healthy(target), within_s=20)
    yield
    eventually(lambda: _healthy(target), within_s=20)


def _precheck(remote: Target) -> None:
    """The checks of `python -m conformance`'s precheck, for a plain `pytest conformance/checks --base-url`."""
    if not remote.api_key:
        pytest.exit(f"--base-url {remote.base_url} needs the target's API key: set API_KEY", returncode=2)
    try:
        precheck(remote.base_url, api_key=remote.api_key, jwt_secret=remote.jwt_secret, progress=_stderr)
    except CouldNotRun as error:
        pytest.exit(str(error), returncode=3)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    base_url = request.config.getoption("base_url")
    if base_url:
        remote = Target(base_url.rstrip("/"), os.environ.get("API_KEY"), os.environ.get("JWT_SECRET"))
        if not request.config.getoption("prechecked"):
            _precheck(remote)
        yield remote
        return

    def progress(message: str) -> None:
        print(f"  stack {message}", file=sys.stderr)

    extra_env = {}
    for setting in request.config.getoption("stack_env"):
        name, separator, value = setting.partition("=")
        if not separator:
            raise pytest.UsageError(f"--stack-env wants NAME=VALUE, got {setting!r}")
        extra_env[name] = value
    backend, _ = resolve_backend(request.config.getoption("backend"))
    application = request.config.getoption("stack_app")
    if application and backend != "local":
        raise pytest.UsageError("--stack-app serves a module of this checkout: it needs --backend local")
    with make_stack(
        backend,
        workers=2,
        service_env={**EMBEDDED_SERVICE_ENV, **extra_env},
        progress=progress,
        **({"application": application} if application else {}),
    ) as stack:
        # Start-up checks run the service as the backend does: this interpreter, or the service image.
        own_command: list[str] = getattr(stack, "service_command", None) or [sys.executable, "-m", "service"]
        yield Target(
            stack.api_url,
            stack.api_key,
            stack.service_env["JWT_SECRET"],
            stack,
            service_command=shlex.split(request.config.getoption("service_command") or "") or own_command,
        )
