"""The fault proxy on real TCP connections: Toxiproxy's API and errors, what each toxic does to the bytes,
pooled PostgreSQL and Redis traffic, the toxiproxy-python adapter, and the `python -m chaos.proxy` CLI.

Timings are only asserted where they prove a toxic works, with generous margins (a 300 ms latency must
make a round trip take at least 250 ms); speed is measured by scripts/bench_proxy.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from chaos.proxy import FaultProxy, FaultProxyError, FaultProxyProcess
from chaos.proxy.api import IMPLEMENTATION, TOXIPROXY_API_VERSION
from chaos.proxy.client import InvalidToxic, NotFound, ProxyExists, ToxiproxyClient
from chaos.stack.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.integration

PING = b"PING\r\n"
PONG = b"+PONG\r\n"


# -- fixtures and helpers ----------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    """Echoes every byte back; closes its side when the client has finished sending."""

    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except ConnectionError:
            pass  # reset_peer and dropped connections do this on purpose


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def fault_proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def api(fault_proxy: FaultProxy) -> Iterator[httpx.Client]:
    """The proxy's HTTP API; every proxy a test created is deleted after it."""
    with httpx.Client(base_url=fault_proxy.api_url, timeout=10) as client:
        yield client
        for name in client.get("/proxies").json():
            client.delete(f"/proxies/{name}")


def create_proxy(api: httpx.Client, name: str, upstream: str, **fields: Any) -> int:
    response = api.post("/proxies", json={"name": name, "upstream": upstream, **fields})
    assert response.status_code == 201, response.text
    return int(response.json()["listen"].rsplit(":", 1)[1])


def add_toxic(api: httpx.Client, proxy: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def connect(port: int, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def receive_all(sock: socket.socket) -> tuple[bytes, int]:
    """Everything until the peer closes, and in how many reads it came."""
    data, reads = b"", 0
    while chunk := sock.recv(65536):
        data += chunk
        reads += 1
    return data, reads


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def ping(sock: socket.socket) -> None:
    """A Redis PING on a raw socket."""
    sock.sendall(PING)
    assert receive_exactly(sock, len(PONG)) == PONG


def echoes(sock: socket.socket, data: bytes = b"hello") -> None:
    sock.sendall(data)
    assert receive_exactly(sock, len(data)) == data


# -- the API -----------------------------------------------------------------------------------------


def test_proxies_have_toxiproxys_json_shape(api: httpx.Client, echo: EchoServer) -> None:
    created = api.post("/proxies", json={"name": "echo", "upstream": echo.address})
    assert created.status_code == 201
    body = created.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    host, port = body["listen"].rsplit(":", 1)
    assert (host, body["upstream"], body["enabled"], body["toxics"]) == ("127.0.0.1", echo.address, True, [])
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert low <= int(port) <= high  # an ephemeral listen port is reported as the one the kernel chose
    assert api.get("/proxies").json() == {"echo": body}
    assert api.get("/proxies/echo").json() == body
    version = api.get("/version")
    assert version.status_code == 200
    assert version.json() == {"version": TOXIPROXY_API_VERSION, "implementation": IMPLEMENTATION}
    # The Toxiproxy 2.x release whose API this one implements, as MAJOR.MINOR.PATCH.
    assert re.fullmatch(r"2\.\d+\.\d+", TOXIPROXY_API_VERSION)
    with connect(int(port)) as sock:
        echoes(sock)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/proxies/missing", None, 404, "proxy not found"),
        ("DELETE", "/proxies/missing", None, 404, "proxy not found"),
        ("POST", "/proxies/missing", {"enabled": False}, 404, "proxy not found"),
        ("POST", "/proxies", {"name": "echo", "upstream": "127.0.0.1:1"}, 409, "proxy already exists"),
        ("POST", "/proxies", "{not json", 400, "bad request body"),
        ("POST", "/proxies", "", 400, "bad request body: EOF"),
        ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
        ("POST", "/proxies", {"name": "other"}, 400, "missing required field: upstream"),
        ("POST", "/proxies", {"name": "other", "upstream": "127.0.0.1:1", "enabled": "yes"}, 400, "enabled"),
        ("POST", "/proxies", {"name": "far", "upstream": "10.9.8.7:5432"}, 400, "not a loopback address"),
        ("POST", "/proxies", {"name": "open", "upstream": "127.0.0.1:1", "listen": "0.0.0.0:0"}, 400, "not loopback"),
        ("GET", "/proxies/missing/toxics", None, 404, "proxy not found"),
        ("POST", "/proxies/missing/toxics", {"type": "latency"}, 404, "proxy not found"),
        ("GET", "/proxies/echo/toxics/missing", None, 404, "toxic not found"),
        ("DELETE", "/proxies/echo/toxics/missing", None, 404, "toxic not found"),
        ("POST", "/proxies/echo/toxics/missing", {"toxicity": 0}, 404, "toxic not found"),
        ("POST", "/proxies/echo/toxics", {"type": "teleport"}, 400, "invalid toxic type"),
        ("POST", "/proxies/echo/toxics", {"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
        ("POST", "/proxies/echo/toxics", {"type": "latency", "attributes": {"latency": "x"}}, 400, "bad request"),
        ("POST", "/proxies/echo/toxics", {"type": "timeout", "name": "stall"}, 409, "toxic already exists"),
        ("POST", "/proxies/echo/toxics", "[1,", 400, "bad request body"),
        ("PUT", "/proxies", {}, 405, "not allowed"),
        ("GET", "/nothing/here", None, 404, "404 page not found"),
    ],
)
def test_api_errors_match_toxiproxy(
    api: httpx.Client, echo: EchoServer, method: str, path: str, body: object, status: int, message: str
) -> None:
    create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="latency", name="stall")
    content = body if isinstance(body, str) else json.dumps(body) if body is not None else None
    response = api.request(method, path, content=content)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert response.json()["status"] == status
    assert api.get("/proxies/echo/toxics").json()[0]["name"] == "stall"  # a failed call changed nothing


def test_the_api_speaks_keep_alive_and_chunked_http(
    fault_proxy: FaultProxy, api: httpx.Client, echo: EchoServer
) -> None:
    body = json.dumps({"name": "chunked", "upstream": echo.address}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    port = int(fault_proxy.api_url.rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        first = sock.recv(65536)
        sock.sendall(b"GET /proxies/chunked HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection
        second = sock.recv(65536)
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        third, _ = receive_all(sock)
    assert first.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b'"name": "chunked"' in first
    assert second.startswith(b"HTTP/1.1 200 OK\r\n")
    assert third.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in third


def test_browsers_are_refused(api: httpx.Client) -> None:
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert response.status_code == 403


def test_toxics_are_listed_updated_and_removed(api: httpx.Client, echo: EchoServer) -> None:
    create_proxy(api, "echo", echo.address)
    down = add_toxic(api, "echo", type="latency", attributes={"latency": 10})
    up = add_toxic(api, "echo", type="bandwidth", stream="upstream", toxicity=0.5, attributes={"rate": 100})
    assert down == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    assert up["name"] == "bandwidth_upstream"
    assert api.get("/proxies/echo/toxics").json() == [up, down]  # upstream first, as Toxiproxy lists them
    assert api.get("/proxies/echo").json()["toxics"] == [up, down]
    assert api.get("/proxies/echo/toxics/latency_downstream").json() == down

    updated = api.post("/proxies/echo/toxics/latency_downstream", json={"attributes": {"jitter": 5}, "toxicity": 0.5})
    assert updated.status_code == 200
    assert updated.json() == {**down, "attributes": {"latency": 10, "jitter": 5}, "toxicity": 0.5}
    patched = api.patch("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 20}})
    assert patched.json()["attributes"] == {"latency": 20, "jitter": 5}

    assert api.delete("/proxies/echo/toxics/latency_downstream").status_code == 204
    assert api.get("/proxies/echo/toxics").json() == [up]
    assert api.get("/proxies/echo/toxics/latency_downstream").status_code == 404


def test_disabling_refuses_new_connections_and_drops_live_ones(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    live = connect(port)
    echoes(live)
    disabled = api.post("/proxies/echo", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert disabled.json()["listen"] == f"127.0.0.1:{port}"
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    try:
        live.sendall(b"hello")
        assert live.recv(64) == b""
    except ConnectionResetError:
        pass  # dropped either way
    live.close()

    assert api.post("/proxies/echo", json={"enabled": True}).json()["enabled"] is True
    with connect(port) as again:  # back on the same port
        echoes(again)


def test_changing_the_upstream_moves_the_proxy(api: httpx.Client, echo: EchoServer, redis_server: RedisServer) -> None:
    port = create_proxy(api, "moving", echo.address)
    with connect(port) as sock:
        sock.sendall(b"hello")
        assert receive_exactly(sock, 5) == b"hello"
    moved = api.post("/proxies/moving", json={"upstream": f"127.0.0.1:{redis_server.port}"})
    assert moved.json()["upstream"] == f"127.0.0.1:{redis_server.port}"
    with connect(port) as sock:
        ping(sock)  # Redis answers PONG; the echo server would have answered PING


def test_reset_enables_every_proxy_and_removes_every_toxic(api: httpx.Client, echo: EchoServer) -> None:
    first = create_proxy(api, "first", echo.address)
    create_proxy(api, "second", echo.address)
    add_toxic(api, "first", type="timeout", attributes={"timeout": 0})
    add_toxic(api, "second", type="latency", stream="upstream")
    api.post("/proxies/first", json={"enabled": False})

    assert api.post("/reset").status_code == 204
    proxies = api.get("/proxies").json()
    assert all(proxy["enabled"] and proxy["toxics"] == [] for proxy in proxies.values())
    with connect(first) as sock:
        echoes(sock)


def test_populate_creates_keeps_and_replaces(api: httpx.Client, echo: EchoServer, redis_server: RedisServer) -> None:
    other = f"127.0.0.1:{redis_server.port}"
    response = api.post(
        "/populate",
        json=[{"name": "a", "upstream": echo.address}, {"name": "b", "upstream": echo.address, "enabled": False}],
    )
    assert response.status_code == 201
    listed = response.json()["proxies"]
    assert [(proxy["name"], proxy["enabled"]) for proxy in listed] == [("a", True), ("b", False)]
    a = listed[0]
    add_toxic(api, "a", type="latency")

    # Same listen and upstream: left alone, toxics and all. A new upstream: replaced.
    again = api.post(
        "/populate",
        json=[{"name": "a", "listen": a["listen"], "upstream": echo.address}, {"name": "b", "upstream": other}],
    ).json()["proxies"]
    assert again[0]["listen"] == a["listen"]
    assert len(again[0]["toxics"]) == 1
    assert (again[1]["upstream"], again[1]["enabled"]) == (other, True)

    bad = api.post("/populate", json=[{"name": "c", "upstream": echo.address}, {"name": "d"}])
    assert bad.status_code == 400
    assert "upstream at proxy 2" in bad.json()["error"]
    assert "c" not in api.get("/proxies").json()  # validated before anything changed


# -- toxics on real connections -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_every_round_trip_on_a_live_connection(
    api: httpx.Client, redis_server: RedisServer, stream: str
) -> None:
    port = create_proxy(api, "redis", f"127.0.0.1:{redis_server.port}")
    with connect(port) as sock:
        ping(sock)  # connected before the toxic, like a pooled connection
        add_toxic(api, "redis", type="latency", stream=stream, attributes={"latency": 300})
        assert timed(lambda: ping(sock)) >= 0.25
        assert timed(lambda: ping(sock)) >= 0.25
        api.delete(f"/proxies/redis/toxics/latency_{stream}")
        assert timed(lambda: ping(sock)) < 0.2


def test_jitter_varies_the_delay(api: httpx.Client, redis_server: RedisServer) -> None:
    port = create_proxy(api, "redis", f"127.0.0.1:{redis_server.port}")
    add_toxic(api, "redis", type="latency", attributes={"latency": 150, "jitter": 100})
    with connect(port) as sock:
        delays = [timed(lambda: ping(sock)) for _ in range(8)]
    assert min(delays) >= 0.04  # 150 - 100 ms, less timer slack
    assert max(delays) - min(delays) > 0.02  # eight equal delays would mean no jitter


async def test_latency_slows_a_pooled_asyncpg_connection(api: httpx.Client, postgres: PostgresServer) -> None:
    port = create_proxy(api, "postgres", f"127.0.0.1:{postgres.port}")
    url = postgres.url("events").replace(f":{postgres.port}/", f":{port}/")
    pool = await asyncpg.create_pool(url, min_size=2, max_size=2)
    try:
        assert await pool.fetchval("SELECT 1") == 1
        add_toxic(api, "postgres", type="latency", attributes={"latency": 300})
        started = time.perf_counter()
        assert await pool.fetchval("SELECT 2") == 2
        assert time.perf_counter() - started >= 0.25
        await asyncio.to_thread(api.delete, "/proxies/postgres/toxics/latency_downstream")
        started = time.perf_counter()
        assert await pool.fetchval("SELECT 3") == 3
        assert time.perf_counter() - started < 0.2
    finally:
        await pool.close()


def test_timeout_zero_stalls_until_removed_then_closes(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    with connect(port, timeout=0.5) as sock:
        sock.sendall(b"before")
        assert receive_exactly(sock, 6) == b"before"
        add_toxic(api, "echo", type="timeout", attributes={"timeout": 0})
        sock.sendall(b"during")
        with pytest.raises(TimeoutError):
            sock.recv(64)  # no data and no close: a hung dependency
        with pytest.raises(TimeoutError):
            sock.recv(64)
        api.delete("/proxies/echo/toxics/timeout_downstream")
        sock.settimeout(2)
        # The dropped bytes broke the stream, so removing the toxic closes the connection (as Toxiproxy does).
        assert sock.recv(64) == b""


def test_timeout_closes_after_its_delay_without_passing_data(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="timeout", attributes={"timeout": 300})
    with connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(b"dropped")
        assert sock.recv(64) == b""
        assert time.perf_counter() - started >= 0.25


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_reset_peer_resets_the_connection(api: httpx.Client, echo: EchoServer, stream: str) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="reset_peer", stream=stream, attributes={"timeout": 200})
    with connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            sock.recv(64)
        assert time.perf_counter() - started >= 0.15


def test_limit_data_closes_after_that_many_bytes(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="limit_data", attributes={"bytes": 10})
    with connect(port) as sock:
        sock.sendall(bytes(range(100)))
        data, _ = receive_all(sock)
    assert data == bytes(range(10))


def test_slicer_delivers_the_same_bytes_in_many_small_pieces(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="slicer", attributes={"average_size": 64, "size_variation": 32, "delay": 1000})
    payload = os.urandom(8192)
    with connect(port, timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data, reads = receive_all(sock)
    assert data == payload
    assert reads > 10  # ~128 pieces 1 ms apart; unsliced it would arrive in one or two reads


def test_bandwidth_throttles_and_keeps_the_bytes(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="bandwidth", attributes={"rate": 50})  # 50 KB/s
    payload = os.urandom(50_000)
    with connect(port, timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data, _ = receive_all(sock)
        took = time.perf_counter() - started
    assert data == payload
    assert took >= 0.8  # 50 KB at 50 KB/s is a second


def test_slow_close_delays_the_close_not_the_data(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="slow_close", attributes={"delay": 300})
    with connect(port) as sock:
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)  # the echo server answers, then closes its side
        assert receive_exactly(sock, 3) == b"bye"
        started = time.perf_counter()
        assert sock.recv(64) == b""
        assert time.perf_counter() - started >= 0.25


def test_toxicity_zero_and_one(api: httpx.Client, redis_server: RedisServer) -> None:
    port = create_proxy(api, "redis", f"127.0.0.1:{redis_server.port}")
    add_toxic(api, "redis", type="latency", toxicity=0, attributes={"latency": 300})
    with connect(port) as sock:
        assert timed(lambda: ping(sock)) < 0.2
        api.post("/proxies/redis/toxics/latency_downstream", json={"toxicity": 1})
        assert timed(lambda: ping(sock)) >= 0.25  # an update rolls again for live connections


def test_toxicity_is_decided_once_per_connection(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="limit_data", toxicity=0.5, attributes={"bytes": 0})
    cut, passed = 0, 0
    for _ in range(40):
        with connect(port) as sock:
            sock.sendall(b"one")
            if receive_exactly(sock, 3) == b"one":
                passed += 1
                for _ in range(3):  # a connection that passed keeps passing
                    sock.sendall(b"more")
                    assert receive_exactly(sock, 4) == b"more"
            else:
                cut += 1
    assert cut > 0
    assert passed > 0  # both outcomes in 40 tries, unless something is not random (p = 2^-39)


def test_toxics_changing_mid_stream_never_lose_or_reorder_bytes(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="bandwidth", name="throttle", attributes={"rate": 8_000})  # 4 MB take 0.5 s
    payload = os.urandom(4 * 1024 * 1024)
    received: list[bytes] = []
    with connect(port, timeout=30) as sock:
        reader = threading.Thread(target=lambda: received.append(receive_all(sock)[0]))
        reader.start()

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        toxics = [
            {"type": "latency", "attributes": {"latency": 20, "jitter": 10}},
            {"type": "slicer", "stream": "upstream", "attributes": {"average_size": 4096, "size_variation": 1024}},
            {"type": "latency", "stream": "upstream", "attributes": {"latency": 5}},
        ]
        for _ in range(3):
            for toxic in toxics:
                add_toxic(api, "echo", **toxic)
                time.sleep(0.02)
            for toxic in api.get("/proxies/echo/toxics").json():
                if toxic["name"] != "throttle":
                    api.delete(f"/proxies/echo/toxics/{toxic['name']}")
        assert reader.is_alive()  # the toxics came and went while bytes were flowing
        api.delete("/proxies/echo/toxics/throttle")
        sender.join(30)
        reader.join(30)
    assert received == [payload]


# -- pooled traffic -----------------------------------------------------------------------------------


async def test_pooled_postgres_and_redis_traffic_is_carried_intact(
    api: httpx.Client, postgres: PostgresServer, redis_server: RedisServer
) -> None:
    pg_port = create_proxy(api, "postgres", f"127.0.0.1:{postgres.port}")
    redis_port = create_proxy(api, "redis", f"127.0.0.1:{redis_server.port}")
    pool = await asyncpg.create_pool(
        postgres.url("events").replace(f":{postgres.port}/", f":{pg_port}/"), min_size=8, max_size=8
    )
    try:
        results = await asyncio.gather(
            *(pool.fetchval("SELECT repeat(md5($1::text), 4000)", str(n)) for n in range(200))
        )
        assert all(len(value) == 128_000 for value in results)
        assert {value[:32] for value in results} == {value[:32] for value in results[:200]}
        assert len({value[:32] for value in results}) == 200
    finally:
        await pool.close()

    client = redis.Redis(host="127.0.0.1", port=redis_port, max_connections=8)
    values = {f"k{n}": os.urandom(64 * 1024) for n in range(50)}

    def write_and_read(key: str) -> bool:
        client.set(key, values[key])
        return client.get(key) == values[key]

    results_ok = await asyncio.gather(*(asyncio.to_thread(write_and_read, key) for key in values))
    assert all(results_ok)
    assert client.dbsize() >= 50
    client.close()


async def test_awaited_in_a_running_loop(postgres: PostgresServer) -> None:
    async with FaultProxy() as proxy, httpx.AsyncClient(base_url=proxy.api_url) as api:
        response = await api.post("/proxies", json={"name": "pg", "upstream": f"127.0.0.1:{postgres.port}"})
        port = int(response.json()["listen"].rsplit(":", 1)[1])
        connection = await asyncpg.connect(postgres.url("events").replace(f":{postgres.port}/", f":{port}/"))
        assert await connection.fetchval("SELECT 41 + 1") == 42
        await (await api.post("/proxies/pg", json={"enabled": False})).aread()
        with pytest.raises((asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError, ConnectionError)):
            await asyncio.wait_for(connection.fetchval("SELECT 1"), 5)
        await connection.close(timeout=1)
    with pytest.raises(FaultProxyError):
        proxy.api_url  # noqa: B018 - the property raises once stopped


# -- toxiproxy-python through the adapter ---------------------------------------------------------------


def test_toxiproxy_python_drives_the_proxy(
    fault_proxy: FaultProxy, api: httpx.Client, redis_server: RedisServer
) -> None:
    client = ToxiproxyClient(fault_proxy.api_url)
    assert client.running()
    assert client.version() == TOXIPROXY_API_VERSION  # the adapter reads the {"version": ...} body

    proxy = client.create(name="redis", upstream=f"127.0.0.1:{redis_server.port}")
    assert proxy.enabled
    assert proxy.listen.startswith("127.0.0.1:")
    with pytest.raises(ProxyExists):
        client.create(name="redis", upstream=f"127.0.0.1:{redis_server.port}")
    assert set(client.proxies()) == {"redis"}

    name = proxy.add_toxic(type="latency", attributes={"latency": 300}, stream="upstream", toxicity=1.0)
    assert name == "latency_upstream"
    assert client.proxy("redis").toxics()["latency_upstream"].attributes == {"latency": 300, "jitter": 0}
    with connect(proxy.listen_port) as sock:
        assert timed(lambda: ping(sock)) >= 0.25
        proxy.destroy_toxic(name)
        assert timed(lambda: ping(sock)) < 0.2

    with proxy.toxic(type="timeout", attributes={"timeout": 0}) as stall:
        assert stall in proxy.toxics()
    assert proxy.toxics() == {}
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="teleport")

    with proxy.down():
        assert client.proxy("redis").enabled is False
        with pytest.raises(ConnectionRefusedError):
            connect(proxy.listen_port)
    assert client.proxy("redis").enabled is True

    proxy.add_toxic(type="latency")
    proxy.disable()
    client.reset()
    assert client.proxy("redis").enabled
    assert client.proxy("redis").toxics() == {}

    populated = client.populate([{"name": "other", "upstream": f"127.0.0.1:{redis_server.port}"}])
    assert set(populated) == {"other"}
    client.proxy("other").destroy()
    with pytest.raises(NotFound):
        client.proxy("other")
    client.destroy_all()
    assert client.proxies() == {}


def test_clients_for_two_servers_do_not_cross(fault_proxy: FaultProxy, api: httpx.Client, echo: EchoServer) -> None:
    with FaultProxy() as second:
        here, there = ToxiproxyClient(fault_proxy.api_url), ToxiproxyClient(second.api_url)
        here.create(name="here", upstream=echo.address)
        there.create(name="there", upstream=echo.address)
        here.proxy("here").add_toxic(type="latency")
        assert set(here.proxies()) == {"here"}
        assert set(there.proxies()) == {"there"}
        assert there.proxy("there").toxics() == {}


def test_toxiproxy_url_chooses_the_server(
    fault_proxy: FaultProxy, api: httpx.Client, echo: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", fault_proxy.api_url)
    ToxiproxyClient().create(name="from-env", upstream=echo.address)
    assert "from-env" in api.get("/proxies").json()
    with pytest.raises(ValueError, match="http://host:port"):
        ToxiproxyClient("ftp://127.0.0.1:8474")


# -- the command line ----------------------------------------------------------------------------------


def test_the_cli_explains_itself() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaos.proxy", "--help"], capture_output=True, text=True, check=True, timeout=30
    )
    for expected in ("--listen", "--config", "--allow-upstream", "Toxiproxy"):
        assert expected in result.stdout


def test_the_cli_populates_from_a_config_file_and_stops_on_sigterm(tmp_path: Path, echo: EchoServer) -> None:
    config = tmp_path / "toxiproxy.json"
    config.write_text(json.dumps([{"name": "echo", "listen": "127.0.0.1:0", "upstream": echo.address}]))
    with FaultProxyProcess(extra_args=("--config", str(config))) as process:
        proxies = httpx.get(f"{process.api_url}/proxies").json()
        assert proxies["echo"]["upstream"] == echo.address
        with connect(int(proxies["echo"]["listen"].rsplit(":", 1)[1])) as sock:
            sock.sendall(b"through the cli")
            assert receive_exactly(sock, 15) == b"through the cli"
        pid = process.pid
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process.pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.pid is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[{", "is not JSON"),
        ('{"name": "x"}', "must be a JSON array"),
        ('[{"name": "far", "upstream": "10.1.1.1:5432"}]', "not a loopback address"),
    ],
)
def test_the_cli_refuses_a_bad_config(tmp_path: Path, config: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "chaos.proxy", "--listen", "127.0.0.1:0", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr
