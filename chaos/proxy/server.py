"""The fault proxy as an object: awaited inside a running event loop, or on a thread with its own loop.

    async with FaultProxy() as proxy:          # inside an asyncio program
        ...proxy.api_url...

    with FaultProxy() as proxy:                # sync code (pytest, scripts): a background thread + loop
        ...proxy.api_url...

The thread runs uvloop when it is installed. A proxy left running on a thread is stopped at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from chaos.proxy.addresses import AddressPolicy, join_host_port
from chaos.proxy.api import ToxiproxyApi
from chaos.proxy.errors import ApiError
from chaos.proxy.http import serve_connection
from chaos.proxy.registry import ProxyCollection

THREAD_START_TIMEOUT_S = 15.0
_threaded: weakref.WeakSet[FaultProxy] = weakref.WeakSet()


class FaultProxyError(RuntimeError):
    """The fault proxy could not start (its API address is taken, a configured proxy is invalid...)."""


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop when available (it roughly halves the proxy's per-hop cost), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class FaultProxy:
    """Toxiproxy's HTTP API on `listen` (127.0.0.1, any free port by default) and the proxies it manages."""

    def __init__(
        self,
        listen: str = "127.0.0.1:0",
        *,
        policy: AddressPolicy | None = None,
        proxies: Sequence[dict[str, Any]] = (),
        default_lease_s: float | None = None,
    ) -> None:
        """`default_lease_s`: the lease (leases.py) of every toxic and disabled proxy whose request names none;
        ValueError unless it is > 0 and <= 3600."""
        self.policy = policy or AddressPolicy()
        self.listen = listen
        self.initial_proxies = list(proxies)
        self.collection = ProxyCollection(self.policy, default_lease_s=default_lease_s)
        self._server: asyncio.Server | None = None
        self._api_connections: set[asyncio.StreamWriter] = set()
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    @property
    def api_url(self) -> str:
        if self._address is None:
            raise FaultProxyError("the fault proxy is not running")
        return f"http://{join_host_port(*self._address)}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- inside a running loop -------------------------------------------------------------------------
    async def start(self) -> Self:
        host, port = self.policy.bind_host(self.listen)
        api = ToxiproxyApi(self.collection)
        try:
            self._server = await asyncio.start_server(
                functools.partial(serve_connection, handler=api, open_writers=self._api_connections),
                host,
                port,
                reuse_address=True,
            )
        except OSError as error:
            raise FaultProxyError(f"cannot listen on {self.listen}: {error.strerror or error}") from error
        self._address = self._server.sockets[0].getsockname()[:2]
        if self.initial_proxies:
            try:
                _, failure = await self.collection.populate(self.initial_proxies)
            except ApiError as error:
                failure = error
            if failure is not None:
                await self.aclose()
                raise FaultProxyError(f"cannot create the configured proxies: {failure.message}")
        return self

    async def aclose(self) -> None:
        """Stop every proxy (dropping its connections) and the API."""
        server, self._server = self._server, None
        self._address = None
        if server is not None:
            server.close()
        for writer in list(self._api_connections):
            writer.close()  # idle keep-alive clients: their handlers end on EOF
        await self.collection.close()
        if server is not None:
            await server.wait_closed()

    async def serve_until_stopped(self) -> None:
        """Run until `request_stop()` (from any thread) or cancellation, then close."""
        self._loop = asyncio.get_running_loop()
        if self._stop_requested is None:
            self._stop_requested = asyncio.Event()
        try:
            await self._stop_requested.wait()
        finally:
            self._stop_requested = None
            await self.aclose()

    def request_stop(self) -> None:
        loop, event = self._loop, self._stop_requested
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                loop.call_soon_threadsafe(event.set)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- on a background thread ------------------------------------------------------------------------
    def start_in_thread(self) -> Self:
        """Start on a daemon thread with its own event loop; returns once the API is listening."""
        if self._thread is not None:
            raise FaultProxyError("the fault proxy is already running on a thread")
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            try:
                await self.start()
            except BaseException as error:
                failure.append(error)
                return
            finally:
                # Created before `ready` is set, so a stop requested right after start is not lost.
                self._loop = asyncio.get_running_loop()
                self._stop_requested = asyncio.Event()
                ready.set()
            await self.serve_until_stopped()

        def run() -> None:
            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                runner.run(main())

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(THREAD_START_TIMEOUT_S):
            raise FaultProxyError("the fault proxy thread did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        _threaded.add(self)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a proxy started with `start_in_thread` and wait for its thread to end."""
        thread = self._thread
        if thread is None:
            return
        self.request_stop()
        thread.join(timeout)
        self._thread = None
        self._loop = None
        _threaded.discard(self)

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _stop_leftovers() -> None:
    for proxy in list(_threaded):
        with contextlib.suppress(Exception):
            proxy.stop(timeout=2.0)
