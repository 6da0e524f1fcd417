"""Nothing the harness or the service starts outlives its starter, and no two unrelated servers share a port.

- A second service on a taken port exits with status 3 and one line naming the address (no SO_REUSEPORT
  between unrelated servers), even when it opted in to port sharing and the first did not.
- `kill -9` of a process that started a `LocalStack`, or of `scripts/serve.py`, leaves no server, fault
  proxy, service or worker running and their ports free within seconds (parent-death signals).
- The next start removes the labelled temporary directories of a dead owner, and stops what still runs
  from them (a paused PostgreSQL's processes), and touches nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lifecycle import OWNER_FILE, ServerError, labelled_directory, remove_leftovers
from chaos.stack.migrations import REPO_ROOT
from chaos.stack.servers import RedisServer
from chaos.stack.service import ServiceProcess
from tests.stack.probes import alive, holds_within, process_tree, refuses

pytestmark = pytest.mark.integration

DIES_WITHIN_S = 10.0
START_TIMEOUT_S = 120.0

STACK_OWNER = """
import json
from chaos.stack.local import LocalStack

stack = LocalStack(workers=2).start()
endpoints = stack.endpoints
print(json.dumps({
    "urls": [endpoints.api_url, endpoints.proxy_api_url, endpoints.database_url, endpoints.redis_url],
    "directory": str(stack.directory),
}), flush=True)
input()  # until killed
"""

PAUSED_POSTGRES_OWNER = """
import json
from chaos.stack.servers import PostgresServer

server = PostgresServer().start()
server.pause()
print(json.dumps({"url": server.url(), "directory": str(server.directory), "pids": server.pids()}), flush=True)
input()  # until killed
"""


def _owned_by(directory: Path, pid: int) -> bool:
    try:
        return bool(json.loads((directory / OWNER_FILE).read_text())["pid"] == pid)
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A $TMPDIR of the test's own: other test runs on the machine sweep /tmp, and must not do this test's
    work for it. Readable by the `postgres` user, which PostgreSQL runs as under root."""
    root = Path(tempfile.mkdtemp(prefix="lifetime-test-"))
    root.chmod(0o755)
    yield root
    remove_leftovers(root)
    shutil.rmtree(root, ignore_errors=True)


def _owner(script: str, tmp: Path) -> tuple[subprocess.Popen[str], dict[str, object]]:
    """A python child running `script` with `tmp` as its $TMPDIR, and the JSON line it printed once ready."""
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "TMPDIR": str(tmp)},
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        _, errors = process.communicate(timeout=30)
        pytest.fail(f"the owner process did not start:\n{errors[-3000:]}")
    return process, json.loads(line)


@pytest.fixture
def killed_owners(private_tmp: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Owner processes a test starts; whatever happens, they are killed (and `private_tmp` then cleaned)."""
    owners: list[subprocess.Popen[str]] = []
    yield owners
    for owner in owners:
        if owner.poll() is None:
            owner.kill()
        owner.communicate(timeout=30)


# -- one port, one server ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reuse_port", ["false", "true"], ids=["plain", "second-opted-in-to-sharing"])
def test_a_second_server_on_a_taken_port_exits_3_naming_the_address(
    service_env: dict[str, str], reuse_port: str
) -> None:
    with ServiceProcess(service_env, workers=2) as first:
        address = f"127.0.0.1:{first.port}"
        result = subprocess.run(
            [sys.executable, "-m", "service", "--bind", address, "--workers", "2"],
            cwd=REPO_ROOT,
            env={**os.environ, **service_env, "LISTEN_REUSE_PORT": reuse_port},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 3, result.stdout + result.stderr
        assert result.stderr.strip().splitlines() == [
            f"python -m service: could not bind {address}: Address already in use "
            "(another server listens there: stop it, or pick another --bind)"
        ]
        assert first.running
        assert first.log_tail().count("Running on http") == 2  # the first kept its port and its workers


def test_a_harness_start_on_a_port_another_server_answers_is_not_taken_for_this_one_up(
    service_env: dict[str, str],
) -> None:
    """The other server answers /health/live on the port at once; the start must wait for its own workers
    (and fail when they refuse the port), not announce the other one as itself."""
    with ServiceProcess(service_env) as first:
        second = ServiceProcess(service_env, port=first.port)
        with pytest.raises(ServerError, match="exited with 3") as refused:
            second.start()
        assert "could not bind" in str(refused.value)
        assert not second.running
        assert first.running


# -- a killed starter leaves nothing running ---------------------------------------------------------------
def test_sigkill_of_a_stack_owner_leaves_nothing_running_and_the_next_start_removes_its_directories(
    killed_owners: list[subprocess.Popen[str]], private_tmp: Path
) -> None:
    mine = labelled_directory("mine", root=private_tmp)  # a live owner's directory (ours)
    unlabelled = private_tmp / "rb-unlabelled"
    unlabelled.mkdir()
    owner, ready = _owner(STACK_OWNER, private_tmp)
    killed_owners.append(owner)
    started = process_tree(owner.pid) - {owner.pid}
    # postgres (several), redis, the fault proxy, the service's supervisor, its two workers
    assert len(started) >= 7, started
    urls = [str(url) for url in ready["urls"]]  # type: ignore[attr-defined]
    owned = [path for path in private_tmp.glob("rb-*") if _owned_by(path, owner.pid)]
    assert Path(str(ready["directory"])) in owned
    assert {path.name.split("-")[1] for path in owned} == {"stack", "postgres", "redis", "fault"}

    owner.send_signal(signal.SIGKILL)
    owner.wait(30)

    assert holds_within(lambda: not any(alive(pid) for pid in started), within_s=DIES_WITHIN_S), [
        pid for pid in started if alive(pid)
    ]
    assert all(refuses(url) for url in urls), urls
    assert all(path.exists() for path in owned), "a killed owner cannot remove its own directories"

    labelled_directory("next", root=private_tmp)  # what any start of a server, service or stack does first
    assert not any(path.exists() for path in owned), "the next start removes a dead owner's directories"
    assert mine.exists(), "a live owner's directory stays"
    assert unlabelled.exists(), "a directory without a label stays"


def test_the_next_start_stops_what_still_runs_from_a_dead_owners_directory(
    killed_owners: list[subprocess.Popen[str]], private_tmp: Path
) -> None:
    """A PostgreSQL paused (SIGSTOP) when its owner is killed: the postmaster dies with the owner, its
    stopped children cannot notice; the next start kills them (they run in its data directory)."""
    owner, ready = _owner(PAUSED_POSTGRES_OWNER, private_tmp)
    killed_owners.append(owner)
    directory = Path(str(ready["directory"]))
    pids = [int(pid) for pid in ready["pids"]]  # type: ignore[attr-defined]
    postmaster, children = pids[0], pids[1:]
    assert children, "PostgreSQL runs auxiliary processes"
    assert (directory / OWNER_FILE).exists()

    owner.send_signal(signal.SIGKILL)
    owner.wait(30)
    assert holds_within(lambda: not alive(postmaster), within_s=DIES_WITHIN_S), "the postmaster dies with its owner"
    assert refuses(str(ready["url"]))

    assert all(alive(pid) for pid in children), "stopped, they cannot notice that the postmaster died"
    labelled_directory("next", root=private_tmp)
    assert holds_within(lambda: not any(alive(pid) for pid in children), within_s=DIES_WITHIN_S)
    assert not directory.exists()


def test_sigkill_of_serve_leaves_nothing_answering_on_its_ports(
    killed_owners: list[subprocess.Popen[str]], private_tmp: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL")}
    env["TMPDIR"] = str(private_tmp)
    serve = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--port", "0", "--workers", "2"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed_owners.append(serve)
    assert serve.stdout is not None
    printed = ""
    deadline = time.monotonic() + START_TIMEOUT_S
    while "API on http://" not in printed:
        line = serve.stdout.readline()
        assert line, printed
        assert time.monotonic() < deadline, printed
        printed += line
    ports = [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", printed)]
    assert len(set(ports)) >= 3, printed  # PostgreSQL, Redis, the API
    started = process_tree(serve.pid) - {serve.pid}

    serve.send_signal(signal.SIGKILL)
    serve.wait(30)

    assert holds_within(lambda: not any(alive(pid) for pid in started), within_s=DIES_WITHIN_S)
    assert all(refuses(f"http://127.0.0.1:{port}") for port in ports), printed


def test_a_server_started_from_a_short_lived_thread_outlives_that_thread() -> None:
    """The kernel sends the parent-death signal when the forking *thread* ends; servers started from other
    threads are forked by one long-lived thread instead, so they live until their owner stops them."""
    started: list[RedisServer] = []
    thread = threading.Thread(target=lambda: started.append(RedisServer().start()))
    thread.start()
    thread.join(30)
    assert started, "the server started"
    with started[0] as server:
        assert not thread.is_alive()
        time.sleep(0.5)  # would be ample for a SIGKILL sent when the thread ended to land
        assert server.running
        assert not refuses(server.url())
