"""The Docker-backed tests: they need a Docker engine and the images (`make docker-test` prepares both).

They run only when RB_DOCKER_TESTS=1 (set by `make docker-test`); then a missing engine or image is a failure,
not a skip. In a plain `make test` they are skipped, so that stage never needs Docker.
"""

from __future__ import annotations

import os

import pytest

ENABLED = os.environ.get("RB_DOCKER_TESTS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine and the stack's images (make docker-test)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason="Docker-backed: run `make docker-test` (RB_DOCKER_TESTS=1)")
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.docker)
            if not ENABLED:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def docker_ready() -> None:
    """With RB_DOCKER_TESTS=1, fail at once and say why when the Docker backend cannot run."""
    if not ENABLED:
        return
    from chaos.docker_stack import docker_status

    usable, reason = docker_status()
    if not usable:
        pytest.fail(f"RB_DOCKER_TESTS=1 but the Docker backend cannot run: {reason}", pytrace=False)
