"""The baseline of the pipeline benchmark (scripts/bench_bare_app.py) comes up the way the benchmark starts it:
served by `python -m service --app`, waited for by `ServiceProcess` (which needs hypercorn's "Running on"
line in the log and /health/live), and answering its one route; the bare suite app
(scripts/bench_bare_suite_app.py) answers the suite's routes with the service's own bodies."""

from __future__ import annotations

import uuid

import httpx
import pytest
from quart.typing import TestClientProtocol as Client

from chaos.stack.service import ServiceProcess
from tests.helpers import API_KEY_HEADERS, TEST_API_KEY, TEST_JWT_SECRET, event

pytestmark = pytest.mark.integration

BARE_APP = "scripts/bench_bare_app.py:app"  # as scripts/bench_pipeline.py names it


def test_the_bare_app_is_served_and_answers_its_route(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "API_KEY": TEST_API_KEY, "JWT_SECRET": TEST_JWT_SECRET}
    with ServiceProcess(env, application=BARE_APP) as bare:
        response = httpx.get(f"{bare.base_url}/bare/events/{uuid.uuid4()}", timeout=5)
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "not found"}


BARE_SUITE_APP = "scripts/bench_bare_suite_app.py:app"  # as docs/BENCHMARKS.md runs it


async def test_the_bare_suite_app_answers_the_suites_routes_as_the_service_does(
    database_url: str, client: Client
) -> None:
    source = f"bare-{uuid.uuid4().hex[:8]}"
    events = [event(source=source) for _ in range(3)]
    stored = await client.post("/api/v1/events", json={"items": events}, headers=API_KEY_HEADERS)
    assert stored.status_code == 201, await stored.get_data()
    ids = (await stored.get_json())["ids"]
    until = "2100-01-01T00:00:00Z"
    requests = [
        ("/api/v1/events", {"source": source, "limit": "2"}),
        ("/api/v1/events/stats", {"group_by": "source", "bucket": "day", "since": "2000-01-01T00:00:00Z",
                                  "until": "2000-01-08T00:00:00Z"}),
        ("/api/v1/events/stats", {"group_by": "type", "bucket": "day", "since": "2099-12-25T00:00:00Z",
                                  "until": until}),
        (f"/api/v1/events/{ids[0]}", {}),
    ]  # fmt: skip
    env = {"DATABASE_URL": database_url, "API_KEY": TEST_API_KEY, "JWT_SECRET": TEST_JWT_SECRET}
    with ServiceProcess(env, application=BARE_SUITE_APP) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=5) as bare:
            for path, params in requests:
                by_service = await client.get(path, query_string=params, headers=API_KEY_HEADERS)
                by_bare = await bare.get(path, params=params)
                assert by_bare.status_code == by_service.status_code == 200, (path, by_bare.text)
                assert by_bare.json() == await by_service.get_json(), path
            first_page = (await bare.get("/api/v1/events", params=requests[0][1])).json()
            assert first_page["next_cursor"], "a page of 2 of 3 events continues"
            missing = await bare.get(f"/api/v1/events/{uuid.uuid4()}")
    assert missing.status_code == 404
