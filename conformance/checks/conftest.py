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
import threading
from collections.abc import Iterator

import pytest

from chaos.stack import BACKEND_CHOICES, STACK_BACKEND_ENV, make_stack, resolve_backend
from chaos.stack.base import StackBackend
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


def _stack_progress(message: str) -> None:
    print(f"  stack {message}", file=sys.stderr)


def _embedded_stack(config: pytest.Config) -> StackBackend:
    """The embedded stack the options ask for, not yet started (a usage error for options that cannot be)."""
    extra_env = {}
    for setting in config.getoption("stack_env"):
        name, separator, value = setting.partition("=")
        if not separator:
            raise pytest.UsageError(f"--stack-env wants NAME=VALUE, got {setting!r}")
        extra_env[name] = value
    backend, _ = resolve_backend(config.getoption("backend"))
    application = config.getoption("stack_app")
    if application and backend != "local":
        raise pytest.UsageError("--stack-app serves a module of this checkout: it needs --backend local")
    return make_stack(
        backend,
        workers=2,
        service_env={**EMBEDDED_SERVICE_ENV, **extra_env},
        progress=_stack_progress,
        **({"application": application} if application else {}),
    )


class EarlyStack:
    """The embedded stack, started in a thread as the session starts, so its start (about 2.7 s, most of it
    initdb, migrations and the service's workers) passes while pytest collects the checks (about 2 s on a
    shard, docs/BENCHMARKS.md). The `target` fixture takes it; a session that never does stops it at the end."""

    def __init__(self, stack: StackBackend) -> None:
        self.stack = stack
        self.error: BaseException | None = None
        self.taken = False
        self._thread = threading.Thread(target=self._start, name="conformance-early-stack", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self.stack.start()
        except BaseException as error:  # raised again where the fixture takes the stack
            self.error = error

    def take(self) -> StackBackend:
        self._thread.join()
        self.taken = True
        if self.error is not None:
            raise self.error
        return self.stack

    def stop_unless_taken(self) -> None:
        if not self.taken:
            self._thread.join()
            self.stack.stop()
            _stack_progress("stopped: no check of this session used it")


_EARLY = pytest.StashKey[EarlyStack]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the embedded stack now when this process will run checks against it (not a remote target, not
    the shards' controller, not --collect-only); options that cannot make one are left to the fixture."""
    # Imported here: at the top of this file it would load the plugin before pytest can rewrite its asserts.
    from conformance.plugin import is_shard_controller

    config = session.config
    if config.getoption("base_url") or config.option.collectonly or is_shard_controller(config):
        return
    try:
        config.stash[_EARLY] = EarlyStack(_embedded_stack(config))
    except (pytest.UsageError, ValueError):
        return


def pytest_sessionfinish(session: pytest.Session) -> None:
    early = session.config.stash.get(_EARLY, None)
    if early is not None:
        early.stop_unless_taken()


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    base_url = request.config.getoption("base_url")
    if base_url:
        remote = Target(base_url.rstrip("/"), os.environ.get("API_KEY"), os.environ.get("JWT_SECRET"))
        if not request.config.getoption("prechecked"):
            _precheck(remote)
        yield remote
        return
    early = request.config.stash.get(_EARLY, None)
    with early.take() if early is not None else _embedded_stack(request.config) as stack:
        # Start-up checks run the service as the backend does: this interpreter, or the service image.
        own_command: list[str] = getattr(stack, "service_command", None) or [sys.executable, "-m", "service"]
        yield Target(
            stack.api_url,
            stack.api_key,
            stack.service_env["JWT_SECRET"],
            stack,
            service_command=shlex.split(request.config.getoption("service_command") or "") or own_command,
        )
