"""DB 장애, DB 과부하 보호 — RB-DB-*, RB-DATA-DURABLE."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from conformance.assertions import event_body, eventually, problem
from conformance.suite_events import check_source
from conformance.target import Target

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control

# RB-DB-FAILFAST: a request that needs the database is answered within the configured bound (default 2 s).
# The client gives it a little more; a hang ends as a ReadTimeout and fails the check.
FAIL_FAST_CLIENT_TIMEOUT_S = 3.0


@contextmanager
def database_fault(target: Target, fault: str) -> Iterator[None]:
    stack = target.controlled
    proxy = stack.proxy("postgres")
    if fault == "down (proxy disabled)":
        with proxy.down():
            yield
    elif fault == "refusing (server stopped)":
        stack.stop_dependency("postgres")
        try:
            yield
        finally:
            stack.start_dependency("postgres")
    elif fault == "reset (reset_peer)":
        with proxy.toxic(type="reset_peer", attributes={"timeout": 0}):
            yield
    elif fault == "hung (timeout toxic)":
        with proxy.toxic(type="timeout", attributes={"timeout": 0}):
            yield
    elif fault == "hung (SIGSTOP)":
        stack.pause_dependency("postgres")
        try:
            yield
        finally:
            stack.resume_dependency("postgres")
    else:
        raise ValueError(fault)


FAULTS = [
    "down (proxy disabled)",
    "refusing (server stopped)",
    "reset (reset_peer)",
    "hung (timeout toxic)",
    "hung (SIGSTOP)",
]


def _works(target: Target) -> bool:
    with target.client(timeout=5) as client:
        return client.get("/api/v1/events", params={"limit": 1}, headers=target.auth).status_code == 200


@requirement("RB-DB-FAILFAST")
@needs_control
@pytest.mark.parametrize("fault", FAULTS)
def test_database_fault_is_a_bounded_503_with_retry_after(target: Target, fault: str) -> None:
    calls = [
        ("GET", "/api/v1/events", None),
        ("GET", f"/api/v1/events/{uuid.uuid4()}", None),
        ("POST", "/api/v1/events", event_body(check_source("failfast"))),
    ]

    def send(call: tuple[str, str, dict[str, str] | None]) -> httpx.Response:
        method, path, body = call
        with target.client(timeout=FAIL_FAST_CLIENT_TIMEOUT_S) as client:
            return client.request(method, path, json=body, headers=target.auth)

    with database_fault(target, fault):
        # All three at once, each on its own connection and each held to the bound by its own client timeout
        # (a hang is a ReadTimeout): a hung database costs the bound once, not once per request.
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            responses = list(pool.map(send, calls))
        for (method, path, _), response in zip(calls, responses, strict=True):
            body = problem(response, 503, "DEPENDENCY_UNAVAILABLE")
            assert int(response.headers["retry-after"]) > 0, f"{method} {path}: {body}"
        with target.client(timeout=FAIL_FAST_CLIENT_TIMEOUT_S) as client:
            assert client.get("/health/live").status_code == 200
    eventually(lambda: _works(target), within_s=10)


@requirement("RB-DB-RECOVER")
@needs_control
@pytest.mark.parametrize("fault", ["restart", "crash"])
def test_service_recovers_without_a_restart_when_the_database_returns(target: Target, fault: str) -> None:
    stack = target.controlled
    assert _works(target)
    (stack.kill_dependency if fault == "crash" else stack.stop_dependency)("postgres")
    with target.client(timeout=FAIL_FAST_CLIENT_TIMEOUT_S) as client:
        assert client.get("/api/v1/events", headers=target.auth).status_code == 503
    stack.start_dependency("postgres")
    back_after = eventually(lambda: _works(target), within_s=10)
    print(f"served again {back_after:.2f} s after the database returned")


@requirement("RB-DB-OVERLOAD")
@needs_control
def test_excess_database_work_gets_a_fast_503_db_overloaded(target: Target) -> None:
    outcomes: list[str] = []
    retry_after: set[str] = set()

    def call() -> None:
        with target.client(timeout=10) as client:
            response = client.get("/api/v1/events", params={"limit": 1}, headers=target.auth)
        code = response.json().get("code") if response.status_code >= 400 else None
        outcomes.append(f"{response.status_code} {code}" if code else str(response.status_code))
        if response.status_code == 503:
            retry_after.add(response.headers["retry-after"])

    # One database slot, a 50 ms queue, and every database round trip made 150 ms slower.
    with target.service_env({"DB_MAX_CONCURRENCY": "1", "DB_QUEUE_TIMEOUT_S": "0.05"}):
        for _ in range(8):  # pooled connections in both workers before the database slows down (a new
            assert _works(target)  # connection's handshake through the slow proxy would exceed its timeout)
        with target.controlled.proxy("postgres").toxic(type="latency", attributes={"latency": 150}):
            threads = [threading.Thread(target=call) for _ in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
    assert set(outcomes) <= {"200", "503 DB_OVERLOADED"}, outcomes
    assert outcomes.count("503 DB_OVERLOADED") >= 6, outcomes
    assert outcomes.count("200") >= 1, outcomes
    assert retry_after == {"1"}


@requirement("RB-DB-OVERLOAD")
@needs_control
def test_read_only_mode_relieves_write_pressure_while_reads_go_on(target: Target) -> None:
    with target.service_env({"DEGRADED_MODE": "read_only"}), target.client() as client:
        refused = client.post("/api/v1/events", json=event_body(check_source("readonly")), headers=target.auth)
        problem(refused, 503, "WRITES_DISABLED")
        assert "retry-after" in refused.headers
        assert client.get("/api/v1/events", params={"limit": 1}, headers=target.auth).status_code == 200
        ready = client.get("/health/ready")
        assert (ready.status_code, ready.json()["degraded_mode"]) == (200, "read_only")


@requirement("RB-DATA-DURABLE")
def test_resending_an_id_never_stores_it_twice(target: Target) -> None:
    event_id = str(uuid.uuid4())
    source = check_source("idem")
    with target.client() as client:
        first = client.post("/api/v1/events", json=event_body(source, id=event_id), headers=target.auth)
        again = client.post("/api/v1/events", json={"items": [event_body(source, id=event_id)]}, headers=target.auth)
        listed = client.get("/api/v1/events", params={"source": source}, headers=target.auth).json()
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["duplicate_ids"] == [event_id]
    assert [item["id"] for item in listed["items"]] == [event_id]


@requirement("RB-DATA-ID-CONFLICT")
def test_a_resent_id_with_other_content_is_409_and_changes_nothing(target: Target) -> None:
    event_id = str(uuid.uuid4())
    source = check_source("conflict")
    original = event_body(source, id=event_id, attributes={"version": 1})
    with target.client() as client:
        assert client.post("/api/v1/events", json=original, headers=target.auth).status_code == 201
        same = client.post("/api/v1/events", json=original, headers=target.auth)
        assert (same.status_code, same.json()["duplicate_ids"]) == (200, [event_id]), same.text
        squat = client.post("/api/v1/events", json={**original, "attributes": {"version": 2}}, headers=target.auth)
        body = problem(squat, 409, "ID_CONFLICT")
        assert body["conflicting_ids"] == [event_id]
        fresh = str(uuid.uuid4())
        batch = {"items": [event_body(source, id=fresh), {**original, "type": "conformance.changed"}]}
        problem(client.post("/api/v1/events", json=batch, headers=target.auth), 409, "ID_CONFLICT")
        stored = client.get(f"/api/v1/events/{event_id}", headers=target.auth).json()
        missing = client.get(f"/api/v1/events/{fresh}", headers=target.auth)
    assert (stored["attributes"], stored["type"]) == ({"version": 1}, "conformance.check"), "the stored event changed"
    assert missing.status_code == 404, "a batch with a conflicting id stored its other events"
    assert stored["written_by"] == "api-key", "the event does not record the principal that wrote it"


@requirement("RB-DATA-DURABLE")
def test_a_batch_is_all_or_nothing(target: Target) -> None:
    source = check_source("atomic")
    items = [event_body(source), event_body(source), event_body(source, occurred_at="not a time")]
    with target.client() as client:
        response = client.post("/api/v1/events", json={"items": items}, headers=target.auth)
        listed = client.get("/api/v1/events", params={"source": source}, headers=target.auth).json()
    problem(response, 422, "VALIDATION_FAILED")
    assert listed["items"] == []


def _writer(
    target: Target, stop: threading.Event, acknowledged: dict[str, list[str]], outcomes: list[bool]
) -> Callable[[], None]:
    """A client writing batches of five, recording each acknowledged batch's ids (and, in `outcomes`, whether
    each batch was acknowledged, in order)."""

    def run() -> None:
        with target.client(timeout=FAIL_FAST_CLIENT_TIMEOUT_S) as client:
            for _ in range(300):  # bounded: at most 300 batches per writer
                if stop.is_set():
                    return
                source = check_source("durable")
                ids = [str(uuid.uuid4()) for _ in range(5)]
                try:
                    response = client.post(
                        "/api/v1/events", json={"items": [event_body(source, id=i) for i in ids]}, headers=target.auth
                    )
                except httpx.HTTPError:
                    acknowledged[source] = []
                    outcomes.append(False)
                    continue
                acknowledged[source] = ids if response.status_code in (200, 201) else []
                outcomes.append(bool(acknowledged[source]))
                time.sleep(0.01)

    return run


def _until(condition: Callable[[], bool], within_s: float) -> None:
    """Wait until `condition` holds, at most `within_s` (then go on: the check's asserts say what is missing)."""
    deadline = time.monotonic() + within_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


@requirement("RB-DATA-DURABLE")
@needs_control
def test_every_acknowledged_event_survives_a_database_crash(target: Target) -> None:
    stack = target.controlled
    stop = threading.Event()
    acknowledged: dict[str, list[str]] = {}
    outcomes: list[bool] = []
    writers = [threading.Thread(target=_writer(target, stop, acknowledged, outcomes)) for _ in range(3)]
    for writer in writers:
        writer.start()
    # Waits for what each phase is for, not for a fixed time (each bounded; the asserts below judge):
    # batches acknowledged before the crash, the crash seen by a writer, and writes acknowledged after it.
    _until(lambda: outcomes.count(True) >= 6, within_s=10)
    stack.kill_dependency("postgres")
    crashed_at = len(outcomes)
    _until(lambda: False in outcomes[crashed_at:], within_s=5)
    stack.start_dependency("postgres")
    back_at = len(outcomes)
    _until(lambda: outcomes[back_at:].count(True) >= 3, within_s=10)
    stop.set()
    for writer in writers:
        writer.join(30)
    eventually(lambda: _works(target), within_s=10)
    acked = {source: ids for source, ids in acknowledged.items() if ids}
    assert len(acked) > 5
    with target.client() as client:
        for source, ids in acked.items():
            listed = client.get("/api/v1/events", params={"source": source}, headers=target.auth).json()["items"]
            assert sorted(item["id"] for item in listed) == sorted(ids), f"acknowledged batch {source}"
        for source in set(acknowledged) - set(acked):
            listed = client.get("/api/v1/events", params={"source": source}, headers=target.auth).json()["items"]
            assert len(listed) in (0, 5), f"unacknowledged batch {source} was partly stored"
