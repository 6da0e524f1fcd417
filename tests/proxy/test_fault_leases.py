"""Fault leases (our extension of Toxiproxy's API) on the real proxy: a toxic or a disabled proxy with
`lease_s` is undone by the proxy itself when the lease ends, renewals push the end, bad leases change
nothing, faults without a lease stay as in Toxiproxy, /reset and removal cancel leases, and the server-wide
default (`FaultProxy(default_lease_s=...)`, `--default-lease-s`, $FAULT_PROXY_DEFAULT_LEASE_S) applies.

Every wait is bounded (`wait_until`); the few fixed waits only let a deadline pass that a cancelled lease
would have fired at, so that the absence of an expiry is observed after it would have happened.
Expiry is asserted never early and at most LATE_S after the lease's end.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from chaos.proxy import FaultProxy, FaultProxyError, FaultProxyProcess
from chaos.proxy.client import InvalidToxic, ToxiproxyClient
from chaos.proxy.leases import DEFAULT_LEASE_ENV
from chaos.proxy.registry import REENABLE_RETRY_S
from tests.proxy.test_fault_proxy import EchoServer, add_toxic, connect, create_proxy, echoes, timed

pytestmark = pytest.mark.integration

LATE_S = 0.25  # an expiry is a timer on the proxy's loop: ~1 ms late; this leaves room for a busy machine
POLL_S = 0.01
BOUND_S = 5.0  # no wait here may take longer than this, whatever happens


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
    """The proxy's HTTP API; every proxy a test created is deleted after it (and its leases with it)."""
    with httpx.Client(base_url=fault_proxy.api_url, timeout=10) as client:
        yield client
        for name in client.get("/proxies").json():
            client.delete(f"/proxies/{name}")


def wait_until(condition: Callable[[], bool], bound_s: float = BOUND_S) -> float:
    """Poll `condition` every POLL_S; the monotonic time it first held. Fails the test after `bound_s`."""
    deadline = time.monotonic() + bound_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {bound_s}s")
        time.sleep(POLL_S)
    return time.monotonic()


def wait_past(moment: float) -> None:
    """Let a monotonic moment pass (a deadline a cancelled lease would have fired at)."""
    time.sleep(max(0.0, moment - time.monotonic()))


def toxic_names(api: httpx.Client, proxy: str) -> list[str]:
    return [toxic["name"] for toxic in api.get(f"/proxies/{proxy}/toxics").json()]


def refused(port: int) -> bool:
    try:
        connect(port, timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def assert_ended_on_time(started: float, ended: float, lease_s: float) -> None:
    # `started` is taken before the request that set the lease, so the lease cannot end before it + lease_s.
    assert started + lease_s <= ended <= started + lease_s + LATE_S, f"ended {ended - started:.3f}s after start"


# -- a toxic's lease ---------------------------------------------------------------------------------------


def test_a_leased_toxic_stops_applying_and_disappears_when_its_lease_ends(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    with connect(port) as live:  # opened before the toxic, like a pooled connection
        echoes(live)
        started = time.monotonic()
        added = add_toxic(api, "echo", type="latency", attributes={"latency": 300}, lease_s=0.7)
        assert 0.6 < added["lease_expires_in_s"] <= 0.7
        shown = api.get("/proxies/echo/toxics/latency_downstream").json()
        assert shown["lease_expires_in_s"] <= added["lease_expires_in_s"]  # counts down
        assert api.get("/proxies/echo").json()["toxics"] == [shown | {"lease_expires_in_s": pytest.approx(0.7, 0.2)}]
        assert timed(lambda: echoes(live)) >= 0.25  # the toxic applies while leased

        ended = wait_until(lambda: toxic_names(api, "echo") == [])
        assert_ended_on_time(started, ended, 0.7)
        assert timed(lambda: echoes(live)) < 0.2  # the live connection is fast again
    with connect(port) as fresh:
        assert timed(lambda: echoes(fresh)) < 0.2
    assert api.get("/proxies/echo/toxics/latency_downstream").status_code == 404
    assert "lease_expires_in_s" not in api.get("/proxies/echo").json()


def test_a_stalling_toxic_with_a_lease_lets_its_connection_go(api: httpx.Client, echo: EchoServer) -> None:
    """The fault a dead harness would leave worst: a `timeout` 0 toxic hangs the stream until removed."""
    port = create_proxy(api, "echo", echo.address)
    with connect(port, timeout=BOUND_S) as sock:
        add_toxic(api, "echo", type="timeout", attributes={"timeout": 0}, lease_s=0.4)
        sock.sendall(b"lost")
        started = time.monotonic()
        # Removing a timeout toxic closes the connections it stalled (their bytes were dropped).
        assert sock.recv(64) == b""
        assert time.monotonic() - started <= 0.4 + LATE_S
    with connect(port) as fresh:
        echoes(fresh)


def test_renewing_a_toxic_lease_pushes_its_end(api: httpx.Client, echo: EchoServer) -> None:
    create_proxy(api, "echo", echo.address)
    first = time.monotonic()
    add_toxic(api, "echo", type="latency", attributes={"latency": 5}, toxicity=0.5, lease_s=0.5)
    time.sleep(0.2)
    renewed_at = time.monotonic()
    renewed = api.post("/proxies/echo/toxics/latency_downstream", json={"lease_s": 1.0})
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert 0.9 < body["lease_expires_in_s"] <= 1.0
    assert (body["attributes"], body["toxicity"]) == ({"latency": 5, "jitter": 0}, 0.5)  # the toxic is untouched

    wait_past(first + 0.5 + LATE_S)  # past the first lease's end
    assert toxic_names(api, "echo") == ["latency_downstream"]
    ended = wait_until(lambda: toxic_names(api, "echo") == [])
    assert_ended_on_time(renewed_at, ended, 1.0)


def test_an_update_without_lease_s_keeps_the_lease_and_one_with_it_changes_both(
    api: httpx.Client, echo: EchoServer
) -> None:
    create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="latency", attributes={"latency": 5}, lease_s=30)
    updated = api.post("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 7}}).json()
    assert updated["attributes"]["latency"] == 7
    assert 29 < updated["lease_expires_in_s"] <= 30  # not renewed, not dropped
    both = api.patch("/proxies/echo/toxics/latency_downstream", json={"attributes": {"jitter": 2}, "lease_s": 600})
    assert both.json()["attributes"] == {"latency": 7, "jitter": 2}
    assert 599 < both.json()["lease_expires_in_s"] <= 600


def test_removing_a_leased_toxic_cancels_its_lease(api: httpx.Client, echo: EchoServer) -> None:
    create_proxy(api, "echo", echo.address)
    started = time.monotonic()
    add_toxic(api, "echo", type="latency", lease_s=0.3)
    assert api.delete("/proxies/echo/toxics/latency_downstream").status_code == 204
    add_toxic(api, "echo", type="latency")  # the same name, no lease: the old timer must not take it
    wait_past(started + 0.3 + LATE_S)
    assert toxic_names(api, "echo") == ["latency_downstream"]


# -- a disabled proxy's lease ------------------------------------------------------------------------------


def test_a_disabled_proxy_with_a_lease_accepts_connections_again(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    started = time.monotonic()
    disabled = api.post("/proxies/echo", json={"enabled": False, "lease_s": 0.5})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False
    assert 0.4 < disabled.json()["lease_expires_in_s"] <= 0.5
    assert refused(port)

    time.sleep(0.2)
    renewed_at = time.monotonic()
    renewed = api.post("/proxies/echo", json={"enabled": False, "lease_s": 0.8}).json()  # renews from now
    assert 0.7 < renewed["lease_expires_in_s"] <= 0.8
    wait_past(started + 0.5 + LATE_S)
    assert refused(port)  # the first lease's end passed: still down

    back = wait_until(lambda: not refused(port))
    assert_ended_on_time(renewed_at, back, 0.8)
    with connect(port) as sock:
        echoes(sock)
    shown = api.get("/proxies/echo").json()
    assert shown["enabled"] is True
    assert "lease_expires_in_s" not in shown


def test_lease_s_alone_leases_an_already_disabled_proxy_and_enabling_cancels_it(
    api: httpx.Client, echo: EchoServer
) -> None:
    port = create_proxy(api, "echo", echo.address)
    api.post("/proxies/echo", json={"enabled": False})  # Toxiproxy's disable: no lease
    assert "lease_expires_in_s" not in api.get("/proxies/echo").json()
    leased = api.post("/proxies/echo", json={"lease_s": 0.3}).json()
    assert (leased["enabled"], leased["lease_expires_in_s"] > 0) == (False, True)
    wait_until(lambda: not refused(port))

    started = time.monotonic()
    api.post("/proxies/echo", json={"enabled": False, "lease_s": 0.3})
    assert api.post("/proxies/echo", json={"enabled": True}).json().get("lease_expires_in_s") is None
    api.post("/proxies/echo", json={"enabled": False})  # down again, without a lease
    wait_past(started + 0.3 + LATE_S)
    assert refused(port)  # the cancelled lease did not bring it back


def test_a_proxy_whose_port_was_taken_is_enabled_once_the_port_is_free(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    api.post("/proxies/echo", json={"enabled": False, "lease_s": 0.2})
    squatter = socket.create_server(("127.0.0.1", port))  # takes the port while the proxy is down
    try:
        wait_until(lambda: api.get("/proxies/echo").json()["lease_expires_in_s"] > 0.5)  # the retry's lease
        assert api.get("/proxies/echo").json()["enabled"] is False
    finally:
        squatter.close()
    freed = time.monotonic()
    back = wait_until(lambda: api.get("/proxies/echo").json()["enabled"])
    assert back - freed <= REENABLE_RETRY_S + LATE_S
    with connect(port) as sock:
        echoes(sock)


# -- refusals ----------------------------------------------------------------------------------------------

BAD_LEASES = ["0", "-1", "3600.001", "1e400", "-0.0", '"5"', "true", "[]", "{}"]


@pytest.mark.parametrize("lease", BAD_LEASES)
def test_bad_leases_are_refused_and_change_nothing(api: httpx.Client, echo: EchoServer, lease: str) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="latency", name="kept", attributes={"latency": 1})
    before = api.get("/proxies").json()
    attempts = [
        ("POST", "/proxies/echo/toxics", f'{{"type": "latency", "name": "new", "lease_s": {lease}}}'),
        ("POST", "/proxies/echo/toxics/kept", f'{{"attributes": {{"latency": 99}}, "lease_s": {lease}}}'),
        ("PATCH", "/proxies/echo/toxics/kept", f'{{"lease_s": {lease}}}'),
        ("POST", "/proxies/echo", f'{{"enabled": false, "lease_s": {lease}}}'),
    ]
    for method, path, body in attempts:
        response = api.request(method, path, content=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json() == {
            "error": response.json()["error"],
            "status": 400,
        }
        assert "lease_s must be a number of seconds greater than 0 and at most 3600" in response.json()["error"]
    assert api.get("/proxies").json() == before  # nothing registered, updated, disabled or leased
    with connect(port) as sock:
        echoes(sock)


def test_a_lease_where_none_can_apply_is_refused(api: httpx.Client, echo: EchoServer) -> None:
    """Ignoring these, as Toxiproxy ignores unknown fields, would leave a fault the caller thinks bounded."""
    create_proxy(api, "echo", echo.address)
    cases = [
        ("/proxies/echo", {"lease_s": 5}, "applies to a disabled proxy"),  # the proxy is enabled
        ("/proxies/echo", {"enabled": True, "lease_s": 5}, "applies to a disabled proxy"),
        ("/proxies", {"name": "new", "upstream": echo.address, "enabled": False, "lease_s": 5}, "creating a proxy"),
        ("/populate", [{"name": "new", "upstream": echo.address, "lease_s": 5}], "in /populate"),
    ]
    for path, body, message in cases:
        response = api.post(path, json=body)
        assert response.status_code == 400, response.text
        assert message in response.json()["error"]
        assert response.json()["status"] == 400
    assert set(api.get("/proxies").json()) == {"echo"}
    assert api.get("/proxies/echo").json()["enabled"] is True


# -- without a lease: Toxiproxy's behaviour ----------------------------------------------------------------


def test_faults_without_a_lease_stay_after_others_leases_end(api: httpx.Client, echo: EchoServer) -> None:
    port = create_proxy(api, "echo", echo.address)
    create_proxy(api, "down", echo.address)
    create_proxy(api, "brief", echo.address)
    forever = add_toxic(api, "echo", type="latency", name="forever", attributes={"latency": 300})
    add_toxic(api, "echo", type="latency", name="brief", stream="upstream", lease_s=0.3)
    api.post("/proxies/down", json={"enabled": False})
    api.post("/proxies/brief", json={"enabled": False, "lease_s": 0.3})
    wait_until(lambda: toxic_names(api, "echo") == ["forever"] and api.get("/proxies/brief").json()["enabled"])

    assert forever == {  # exactly Toxiproxy's shape: no lease field at all
        "attributes": {"latency": 300, "jitter": 0},
        "name": "forever",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    shown = api.get("/proxies").json()
    assert shown["echo"]["toxics"] == [forever]
    assert list(shown["echo"]) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert shown["down"]["enabled"] is False
    assert list(shown["down"]) == ["name", "listen", "upstream", "enabled", "toxics"]
    with connect(port) as sock:
        assert timed(lambda: echoes(sock)) >= 0.25  # still applying


# -- /reset ------------------------------------------------------------------------------------------------


def test_reset_clears_every_lease(api: httpx.Client, echo: EchoServer) -> None:
    create_proxy(api, "echo", echo.address)
    other = create_proxy(api, "other", echo.address)
    started = time.monotonic()
    add_toxic(api, "echo", type="latency", lease_s=0.4)
    api.post("/proxies/other", json={"enabled": False, "lease_s": 0.4})
    assert api.post("/reset").status_code == 204
    shown = api.get("/proxies").json()
    assert all(proxy["enabled"] and proxy["toxics"] == [] for proxy in shown.values())
    assert not any("lease_expires_in_s" in proxy for proxy in shown.values())

    # The same faults again, without leases: the reset's cancelled timers must not undo them.
    add_toxic(api, "echo", type="latency")
    api.post("/proxies/other", json={"enabled": False})
    wait_past(started + 0.4 + LATE_S)
    assert toxic_names(api, "echo") == ["latency_downstream"]
    assert refused(other)


# -- the server-wide default -------------------------------------------------------------------------------


def test_the_default_lease_applies_to_faults_without_one(echo: EchoServer) -> None:
    with FaultProxy(default_lease_s=0.5) as proxy, httpx.Client(base_url=proxy.api_url, timeout=10) as api:
        port = create_proxy(api, "echo", echo.address)
        create_proxy(api, "down", echo.address)
        started = time.monotonic()
        defaulted = add_toxic(api, "echo", type="latency")
        explicit = add_toxic(api, "echo", type="latency", name="explicit", stream="upstream", lease_s=60)
        disabled = api.post("/proxies/echo", json={"enabled": False}).json()
        assert 0.4 < defaulted["lease_expires_in_s"] <= 0.5
        assert 59 < explicit["lease_expires_in_s"] <= 60
        assert 0.4 < disabled["lease_expires_in_s"] <= 0.5
        # Posting the disabled state again does not renew the default lease (only an explicit lease_s does).
        time.sleep(0.1)
        again = api.post("/proxies/echo", json={"enabled": False}).json()
        assert again["lease_expires_in_s"] <= 0.4
        # An update without lease_s does not renew a toxic's default lease either.
        assert (
            api.post("/proxies/echo/toxics/latency_downstream", json={"toxicity": 1}).json()["lease_expires_in_s"]
            <= 0.4
        )

        ended = wait_until(lambda: toxic_names(api, "echo") == ["explicit"] and not refused(port))
        assert_ended_on_time(started, ended, 0.5)
        assert api.get("/proxies/down").json()["enabled"] is True  # an untouched proxy has no lease
        with pytest.raises(ValueError, match="lease_s must be"):
            FaultProxy(default_lease_s=3601)


def test_the_cli_takes_the_default_lease_from_an_option_or_the_environment(
    echo: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for extra_args, environment in [(("--default-lease-s", "0.4"), None), ((), "0.4")]:
        if environment is None:
            monkeypatch.delenv(DEFAULT_LEASE_ENV, raising=False)
        else:
            monkeypatch.setenv(DEFAULT_LEASE_ENV, environment)
        with FaultProxyProcess(extra_args=extra_args) as process, httpx.Client(base_url=process.api_url) as api:
            create_proxy(api, "echo", echo.address)
            started = time.monotonic()
            assert 0.3 < add_toxic(api, "echo", type="latency")["lease_expires_in_s"] <= 0.4
            ended = wait_until(lambda: toxic_names(api, "echo") == [])
            assert_ended_on_time(started, ended, 0.4)
            log = process.log_path.read_text()
            assert "default fault lease: 0.4s" in log
            assert "proxy echo: lease of toxic latency_downstream ended (0.4s): removing it" in log


@pytest.mark.parametrize("value", ["0", "3601", "soon", "nan"])
def test_the_cli_refuses_a_bad_default_lease(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEFAULT_LEASE_ENV, value)
    process = FaultProxyProcess()
    try:
        with pytest.raises(FaultProxyError, match="greater than 0 and at most 3600"):
            process.start()
    finally:
        process.close()


# -- the client --------------------------------------------------------------------------------------------


def test_the_client_asks_for_reads_and_renews_leases(
    fault_proxy: FaultProxy, api: httpx.Client, echo: EchoServer
) -> None:
    client = ToxiproxyClient(fault_proxy.api_url)
    proxy = client.create(name="echo", upstream=echo.address)
    name = proxy.add_toxic(type="latency", attributes={"latency": 300}, lease_s=0.5)
    assert name == "latency_downstream"
    info = proxy.toxics()[name]
    assert info.attributes == {"latency": 300, "jitter": 0}
    assert info.lease_expires_in_s is not None
    assert 0 < info.lease_expires_in_s <= 0.5
    assert 9 < (proxy.renew_toxic(name, 10) or 0) <= 10
    proxy.add_toxic(type="latency", stream="upstream")
    assert proxy.toxics()["latency_upstream"].lease_expires_in_s is None
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", name="bad", lease_s=0)
    assert "bad" not in proxy.toxics()
    with pytest.raises(InvalidToxic):
        proxy.renew_toxic(name, 4000)

    with proxy.toxic(type="slicer", attributes={"average_size": 10}, lease_s=30) as sliced:
        assert proxy.toxics()[sliced].lease_expires_in_s is not None
    assert sliced not in proxy.toxics()

    assert proxy.lease_expires_in_s() is None
    started = time.monotonic()
    proxy.disable(lease_s=0.5)
    assert not proxy.enabled
    remaining = proxy.lease_expires_in_s()
    assert remaining is not None
    assert 0 < remaining <= 0.5
    back = wait_until(lambda: client.proxy("echo").enabled)
    assert_ended_on_time(started, back, 0.5)
    assert proxy.lease_expires_in_s() is None
    with proxy.down(lease_s=30):
        assert refused(proxy.listen_port)
        assert (proxy.lease_expires_in_s() or 0) > 29
    assert client.proxy("echo").enabled
    with connect(proxy.listen_port) as sock:
        echoes(sock)
