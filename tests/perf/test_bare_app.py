"""The baseline of the pipeline benchmark (scripts/bench_bare_app.py) comes up the way the benchmark starts it:
served by `python -m service --app`, waited for by `ServiceProcess` (which needs hypercorn's "Running on"
line in the log and /health/live), and answering its one route."""

from __future__ import annotations

import uuid

import httpx
import pytest

from chaos.stack.service import ServiceProcess
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET

pytestmark = pytest.mark.integration

BARE_APP = "scripts/bench_bare_app.py:app"  # as scripts/bench_pipeline.py names it


def test_the_bare_app_is_served_and_answers_its_route(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "API_KEY": TEST_API_KEY, "JWT_SECRET": TEST_JWT_SECRET}
    with ServiceProcess(env, application=BARE_APP) as bare:
        response = httpx.get(f"{bare.base_url}/bare/events/{uuid.uuid4()}", timeout=5)
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "not found"}
