"""One proxied TCP connection: a client endpoint, an upstream endpoint, and a link per direction.

Speed matters here (drills measure the service, not the proxy), so a link with no toxics writes what it
reads straight to the other side from the protocol callback: no queue, no task, no copy. Only a link with
toxics (or with data still in flight from one just removed) runs a pump task that passes chunks through
its chain of toxics in order. Flow control is end to end: a destination that cannot keep up pauses reading
from the source, and so does a pump whose queue is full.

Ends of stream follow TCP: a half-close (EOF) is passed on as a half-close after in-flight data (and any
slow_close delay); the connection closes once both directions have ended, or as soon as either side is
gone. A toxic that closes its link closes the connection; reset_peer resets both sides.

A toxic runtime that raises unexpectedly (a bug, or a value it cannot handle) anywhere on a link (built,
started, updated, removed, in the pump, at end of stream, in a timer) resets the whole connection and is
logged once per connection (`Connection.fail`): a broken toxic never leaves a client or upstream hanging.

A connection sees the proxy that accepted it only as a `ConnectionOwner`, so the relay does not depend on
the registry that holds the proxies (chaos.proxy.registry).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable
from typing import Literal, Protocol, cast

from chaos.proxy.addresses import split_host_port
from chaos.proxy.toxics import Chunk, CloseLink, Direction, Toxic, ToxicRuntime, runtime_for

log = logging.getLogger("chaos.proxy")

# A pump stops reading from its source above this many queued bytes, and reads again below the low mark.
QUEUE_HIGH_WATER = 1 << 20
QUEUE_LOW_WATER = 256 << 10

# Why an endpoint is not being read from (a bit each): all must clear before reading resumes.
HOLD_CONNECTING = 1
HOLD_DESTINATION_FULL = 2
HOLD_QUEUE_FULL = 4

_LINGER_ZERO = struct.pack("ii", 1, 0)


class _PumpFailure(Exception):
    """Something in the pump raised: carries what (a runtime, or None for the delivery) up through the
    nested `_through` calls, so the runtimes it passes on the way out do not take the blame."""

    def __init__(self, runtime: ToxicRuntime | None, error: Exception) -> None:
        super().__init__(repr(error))
        self.runtime = runtime
        self.error = error


class Endpoint(asyncio.Protocol):
    """One side of a proxied connection: the accepted client socket or the socket to the upstream."""

    def __init__(self, connection: Connection, side: Literal["client", "upstream"]) -> None:
        self.connection = connection
        self.side = side
        self.transport: asyncio.Transport | None = None
        self.outgoing: Link | None = None  # the link that reads from this endpoint
        self.incoming: Link | None = None  # the link that writes to this endpoint
        self.lost = False
        self.early_data: list[bytes] = []
        self.early_eof = False
        self._holds = 0
        self._write_paused = False
        self._writable_waiters: list[asyncio.Future[None]] = []

    # -- asyncio.Protocol ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.hold(HOLD_CONNECTING)  # nothing is read until both sides and both links exist
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # Go (and so Toxiproxy) sets it too: no Nagle delays
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.side == "client":
            self.connection.client_connected()

    def data_received(self, data: bytes) -> None:
        outgoing = self.outgoing
        if outgoing is not None:
            outgoing.feed(data)
        else:
            # uvloop may hand over bytes it read before our pause_reading() in connection_made took
            # effect; they wait here until the link exists.
            self.early_data.append(data)

    def eof_received(self) -> bool:
        if self.outgoing is not None:
            self.outgoing.feed_eof()
        else:
            self.early_eof = True
        return True  # keep our sending side open: a half-close is passed on, not turned into a close

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake_writers()
        self.connection.endpoint_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True
        other = self.connection.other(self)
        if other is not None:
            other.hold(HOLD_DESTINATION_FULL)

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writers()
        other = self.connection.other(self)
        if other is not None:
            other.release(HOLD_DESTINATION_FULL)

    # -- used by links ---------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not self.lost and not transport.is_closing():
            transport.write(data)

    async def writable(self) -> None:
        while self._write_paused and not self.lost:
            waiter = asyncio.get_running_loop().create_future()
            self._writable_waiters.append(waiter)
            await waiter

    def write_eof(self) -> None:
        transport = self.transport
        if transport is not None and not self.lost and not transport.is_closing() and transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self, *, reset: bool = False) -> None:
        """Drop the socket now; with `reset`, the peer gets an RST (SO_LINGER 0) instead of a FIN."""
        transport = self.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        transport.abort()

    def hold(self, reason: int) -> None:
        if not self._holds and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._holds |= reason

    def release(self, reason: int) -> None:
        if not self._holds & reason:
            return
        self._holds &= ~reason
        if not self._holds and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _wake_writers(self) -> None:
        waiters, self._writable_waiters = self._writable_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Link:
    """One direction of a connection: bytes from `source` pass through the toxics to `destination`."""

    def __init__(
        self,
        connection: Connection,
        direction: Direction,
        source: Endpoint,
        destination: Endpoint,
        toxics: Iterable[Toxic],
    ) -> None:
        self.connection = connection
        self.direction = direction
        self.source = source
        self.destination = destination
        self.finished = False
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Chunk] = deque()
        self._queued_bytes = 0
        self._pump: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._input_ended = False
        self._close_at_end = False  # the source is gone: close the destination instead of half-closing it
        self._stopped = False  # closing or abandoned: input is dropped
        # Built last: a runtime that fails while being built leaves a link that can still be abandoned.
        self.chain: list[ToxicRuntime] = []
        self._direct = True
        for toxic in toxics:
            runtime = self._runtime_for(toxic)
            if runtime is None:  # the connection is being reset; no byte may skip the missing toxic
                self._direct = False
                self._stopped = True
                return
            self.chain.append(runtime)
        self._direct = not self.chain

    def start(self) -> None:
        for runtime in self.chain:
            if not self._guard(runtime, runtime.start):
                return

    # -- toxics that fail ------------------------------------------------------------------------------
    def toxic_failed(self, runtime: ToxicRuntime, error: Exception) -> None:
        """A runtime raised (in the pump, at end of stream, in a timer...): reset the connection."""
        self._failed(runtime.toxic, error)

    def _failed(self, toxic: Toxic, error: Exception) -> None:
        self.connection.fail(f"toxic {toxic.name!r} ({toxic.type}, {self.direction})", error)

    def _runtime_for(self, toxic: Toxic) -> ToxicRuntime | None:
        try:
            return runtime_for(toxic, self)
        except Exception as error:
            self._failed(toxic, error)
            return None

    def _guard(self, runtime: ToxicRuntime, action: Callable[[], object]) -> bool:
        """Run one of the runtime's synchronous hooks; False (and the connection reset) when it raised."""
        try:
            action()
        except Exception as error:
            self.toxic_failed(runtime, error)
            return False
        return True

    # -- input -----------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._direct:
            self.destination.write(data)
            return
        if self._stopped:
            return
        self._queue.append(Chunk(data, self._loop.time()))
        self._queued_bytes += len(data)
        if self._queued_bytes > QUEUE_HIGH_WATER:
            self.source.hold(HOLD_QUEUE_FULL)
        self._kick()

    def feed_eof(self) -> None:
        if self._input_ended or self._stopped:
            return
        self._input_ended = True
        if self._direct:
            self._direct = False
            self._pass_end_on()
        else:
            self._kick()

    def source_lost(self) -> None:
        """The source socket is gone: deliver what is in flight, then close the destination."""
        self._close_at_end = True
        if self.finished:
            self.destination.close()
        else:
            self.feed_eof()

    def abandon(self) -> None:
        """The destination is gone (or the proxy dropped the connection): stop everything, drop the data."""
        self._stop()
        self.finished = True
        for runtime in self.chain:
            self._guard(runtime, runtime.interrupt)

    # -- toxics changing under a live connection -------------------------------------------------------
    def add_toxic(self, toxic: Toxic) -> None:
        if self._stopped:
            return
        runtime = self._runtime_for(toxic)
        if runtime is None:
            return
        self.chain.append(runtime)
        self._direct = False
        self._guard(runtime, runtime.start)

    def update_toxic(self, toxic: Toxic) -> None:
        for index, old in enumerate(self.chain):
            if old.toxic.name == toxic.name:
                new = self._runtime_for(toxic)
                if new is None or not self._guard(new, functools.partial(new.inherit, old)):
                    return
                if not self._guard(old, old.interrupt):
                    return
                self.chain[index] = new
                self._guard(new, new.start)
                return

    def remove_toxic(self, name: str) -> None:
        for index, runtime in enumerate(self.chain):
            if runtime.toxic.name == name:
                later = self.chain[index + 1 :]
                del self.chain[index]
                try:
                    runtime.interrupt()
                    closes = runtime.closes_on_removal()
                except Exception as error:
                    self.toxic_failed(runtime, error)
                    return
                if closes and not self._stopped:
                    self._begin_close(later, reset=False)
                elif self._pump is not None:
                    self._kick()  # an idle pump with an empty chain hands back to the direct path
                else:
                    self._direct = not (self.chain or self._queue or self._input_ended or self._stopped)
                return

    def close_by_toxic(self, runtime: ToxicRuntime, *, reset: bool) -> None:
        """A toxic's timer fired (timeout): close as if the toxic had closed the stream."""
        if self._stopped or runtime not in self.chain:
            return
        later = self.chain[self.chain.index(runtime) + 1 :]
        if self._pump is not None:
            self._pump.cancel()
        self._begin_close(later, reset=reset)

    # -- the pump --------------------------------------------------------------------------------------
    def _kick(self) -> None:
        if self._stopped:
            return
        if self._pump is None:
            self._direct = False
            self._pump = self._loop.create_task(self._run(), name=f"link-{self.direction}")
        elif self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run(self) -> None:
        try:
            while not self._stopped:
                if self._queue:
                    chunk = self._queue.popleft()
                    self._queued_bytes -= len(chunk.data)
                    if self._queued_bytes < QUEUE_LOW_WATER:
                        self.source.release(HOLD_QUEUE_FULL)
                    await self._through(tuple(self.chain), 0, chunk)
                elif self._input_ended:
                    for runtime in tuple(self.chain):
                        await self._at_eof(runtime)
                    self._pass_end_on()
                    return
                elif not self.chain:
                    return  # nothing queued, no toxics: back to the direct path
                else:
                    self._wakeup = self._loop.create_future()
                    await self._wakeup
                    self._wakeup = None
        except CloseLink as closing:
            later = self.chain[self.chain.index(closing.runtime) + 1 :] if closing.runtime in self.chain else []
            self._pump = None
            self._begin_close(later, reset=closing.reset)
        except _PumpFailure as failure:
            self._pump = None
            if failure.runtime is not None:
                self.toxic_failed(failure.runtime, failure.error)
            else:
                self.connection.fail(f"delivery on the {self.direction} link", failure.error)
        finally:
            if self._pump is asyncio.current_task():
                self._pump = None
            self._direct = not (self.chain or self._queue or self._input_ended or self._stopped)

    async def _through(self, chain: tuple[ToxicRuntime, ...], index: int, chunk: Chunk) -> None:
        if index == len(chain):
            try:
                await self.destination.writable()
                self.destination.write(chunk.data)
            except Exception as error:
                raise _PumpFailure(None, error) from error
            return
        runtime = chain[index]
        try:
            await runtime.pipe(chunk, functools.partial(self._through, chain, index + 1))
        except CloseLink as closing:
            if closing.runtime is None:
                closing.runtime = runtime
            raise
        except _PumpFailure:
            raise  # a later runtime's, passing through this one's emit
        except Exception as error:
            raise _PumpFailure(runtime, error) from error

    @staticmethod
    async def _at_eof(runtime: ToxicRuntime) -> None:
        try:
            await runtime.at_eof()
        except CloseLink:
            raise
        except Exception as error:
            raise _PumpFailure(runtime, error) from error

    def _pass_end_on(self) -> None:
        self.finished = True
        if self._close_at_end:
            self.destination.close()
        else:
            self.destination.write_eof()
        self.connection.link_finished()

    # -- closing ---------------------------------------------------------------------------------------
    def _stop(self) -> None:
        self._stopped = True
        self._direct = False
        self._queue.clear()
        self._queued_bytes = 0
        if self._pump is not None and self._pump is not asyncio.current_task():
            self._pump.cancel()
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.cancel()

    def _begin_close(self, later: list[ToxicRuntime], *, reset: bool) -> None:
        self._stop()
        self._closer = self._loop.create_task(self._close(later, reset=reset), name="link-close")

    async def _close(self, later: list[ToxicRuntime], *, reset: bool) -> None:
        # Toxics after the one that closed still see the end of the stream (slow_close delays it).
        for runtime in later:
            try:
                await runtime.at_eof()
            except CloseLink:
                pass  # closing already
            except Exception as error:
                self.toxic_failed(runtime, error)
                return
        self.finished = True
        if reset:
            self.connection.reset()
        else:
            self.destination.close()


class ConnectionOwner(Protocol):
    """What a connection needs from the proxy that accepted it (`chaos.proxy.registry.Proxy`): where to
    connect, the toxics each new link starts with, and to be told when both sides are gone."""

    @property
    def name(self) -> str: ...

    @property
    def upstream(self) -> str: ...

    def chain(self, direction: Direction) -> Iterable[Toxic]: ...

    def forget(self, connection: Connection) -> None: ...


class Connection:
    """A client connection accepted by a proxy, its connection to the upstream, and the two links."""

    def __init__(self, proxy: ConnectionOwner) -> None:
        self.proxy = proxy
        self.client = Endpoint(self, "client")
        self.upstream: Endpoint | None = None
        self.links: dict[Direction, Link] = {}
        self._connecting: asyncio.Task[None] | None = None
        self._dropped = False
        self._failed = False

    def other(self, endpoint: Endpoint) -> Endpoint | None:
        return self.upstream if endpoint is self.client else self.client

    def client_connected(self) -> None:
        self._connecting = asyncio.get_running_loop().create_task(self._connect(), name="proxy-connect")

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = split_host_port(self.proxy.upstream)
        try:
            _, upstream = await loop.create_connection(lambda: Endpoint(self, "upstream"), host, port)
        except OSError as error:
            log.warning("proxy %s: cannot reach upstream %s: %s", self.proxy.name, self.proxy.upstream, error)
            self.client.close()
            return
        if self._dropped or self.client.lost:
            upstream.abort()
            return
        self.upstream = upstream
        up = Link(self, "upstream", self.client, upstream, self.proxy.chain("upstream"))
        down = Link(self, "downstream", upstream, self.client, self.proxy.chain("downstream"))
        self.links = {"upstream": up, "downstream": down}
        self.client.outgoing = upstream.incoming = up
        upstream.outgoing = self.client.incoming = down
        if self._failed:  # a runtime failed while its link was built: reset now that both links exist
            self.reset()
            return
        up.start()
        down.start()
        if self._failed:
            return
        for endpoint, link in ((self.client, up), (upstream, down)):
            for data in endpoint.early_data:
                link.feed(data)
            endpoint.early_data.clear()
            if endpoint.early_eof:
                link.feed_eof()
        self.client.release(HOLD_CONNECTING)
        upstream.release(HOLD_CONNECTING)

    def add_toxic(self, toxic: Toxic) -> None:
        if self.links:
            self.links[toxic.direction].add_toxic(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        if self.links:
            self.links[toxic.direction].update_toxic(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        if self.links:
            self.links[toxic.direction].remove_toxic(toxic.name)

    def link_finished(self) -> None:
        if self.links and all(link.finished for link in self.links.values()):
            self.client.close()
            if self.upstream is not None:
                self.upstream.close()

    def endpoint_lost(self, endpoint: Endpoint) -> None:
        if endpoint.incoming is not None:
            endpoint.incoming.abandon()
        if endpoint.outgoing is not None:
            endpoint.outgoing.source_lost()
        elif endpoint is self.client and self._connecting is not None:
            self._connecting.cancel()
        if self.client.lost and (self.upstream is None or self.upstream.lost):
            self.proxy.forget(self)

    def fail(self, cause: str, error: Exception) -> None:
        """Something on this connection raised unexpectedly (`cause`: which toxic): log it once, reset."""
        if self._failed:
            return
        self._failed = True
        log.error(
            "proxy %s: %s failed on a connection; resetting it: %r", self.proxy.name, cause, error, exc_info=error
        )
        if self.links:
            self.reset()
        # else: its links are still being built (`_connect` resets once they exist)

    def reset(self) -> None:
        """Reset both sides (reset_peer, or a toxic that failed)."""
        for link in self.links.values():
            link.abandon()
        self.client.abort(reset=True)
        if self.upstream is not None:
            self.upstream.abort(reset=True)

    def drop(self) -> None:
        """The proxy was disabled or deleted: drop the connection now."""
        self._dropped = True
        if self._connecting is not None:
            self._connecting.cancel()
        for link in self.links.values():
            link.abandon()
        self.client.abort()
        if self.upstream is not None:
            self.upstream.abort()
