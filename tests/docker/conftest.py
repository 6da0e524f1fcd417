"""The Docker-backed tests: they need a Docker engine and the images (`make docker-test` prepares both).

They run only when RB_DOCKER_TESTS=1 (set by `make docker-test`, which CI runs after `make test`); then a missing
engine or image is a failure, not a skip. A plain `make test` does not collect them at all, so that stage never
needs Docker and reports no skipped stand-ins.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENABLED = os.environ.get("RB_DOCKER_TESTS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine and the stack's images (make docker-test)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not ENABLED and collection_path.name.startswith("test_"):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session", autouse=True)
def docker_ready() -> None:
    """With RB_DOCKER_TESTS=1, fail at once and say why when the Docker backend cannot run."""
    if not ENABLED:
        return
    from chaos.docker_stack import docker_status

    usable, reason = docker_status()
    if not usable:
        pytest.fail(f"RB_DOCKER_TESTS=1 but the Docker backend cannot run: {reason}", pytrace=False)
