"""Toxics: what each one does to the bytes of one direction of one connection, as Toxiproxy does it.

A `Toxic` is the configuration the API shows (`name`, `type`, `stream`, `toxicity`, `attributes`). A
`ToxicRuntime` is that toxic applied to one link (one direction of one proxied connection). As in Toxiproxy,
`toxicity` is decided per link: when the toxic meets a connection, it is rolled once; a link that lost the
roll passes data through untouched for as long as the toxic stays unchanged (an update rolls again).

Semantics follow Toxiproxy 2.x (toxics/*.go):
- latency: every chunk leaves `latency` ± `jitter` ms after it arrived (pipelined, not serialised).
- bandwidth: at most `rate` KB/s (1 KB = 1000 bytes), sent in 100 ms slices when the rate is low.
- slow_close: the close that follows end-of-stream is delayed by `delay` ms.
- timeout: all data is dropped; with `timeout` > 0 the connection closes after that many ms, with 0 it hangs
  until the toxic is removed, and removing it closes the connection (its dropped bytes broke the stream).
- reset_peer: on the first data, wait `timeout` ms, then reset both sides (RST, via SO_LINGER 0).
- slicer: chunks are cut into pieces of `average_size` ± `size_variation` bytes, `delay` µs apart.
- limit_data: the connection closes once `bytes` bytes have passed in this direction.

Every attribute is an integer from 0 to a maximum (`ATTRIBUTE_MAXIMA`), checked when a toxic is created or
updated; anything else is a 400 that names the field, and nothing is registered:

    latency.latency, latency.jitter    ms    86_400_000 (24 h)
    bandwidth.rate                     KB/s  2_147_483_647 (2^31 - 1)
    slow_close.delay                   ms    86_400_000 (24 h)
    timeout.timeout                    ms    86_400_000 (24 h)
    reset_peer.timeout                 ms    86_400_000 (24 h)
    slicer.average_size                bytes 2_147_483_647 (2^31 - 1)
    slicer.size_variation              bytes 2_147_483_647, and below average_size
    slicer.delay                       µs    86_400_000_000 (24 h)
    limit_data.bytes                   bytes 9_223_372_036_854_775_807 (2^63 - 1, Go's int64, as in Toxiproxy)

Toxiproxy accepts anything up to Go's int64 (slow_close.delay: uint32) and negative values too; we refuse
more: a wait beyond a day is a hang, not a drill, and a larger number used to get in and then raise inside
the link (10^400 ms overflows a float), leaving connections hung. `toxicity` must be a finite number in
[0, 1] (Toxiproxy takes any float32, treating < 0 as never and > 1 as always).

A runtime that fails anyway (an unexpected exception in its pipe, end-of-stream hook, start or timer) resets
its connection and is logged once: see `LinkControl.toxic_failed`.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Container, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from chaos.proxy.errors import (
    BAD_REQUEST_BODY,
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_ALREADY_EXISTS,
)

Direction = Literal["upstream", "downstream"]
DIRECTIONS: tuple[Direction, Direction] = ("upstream", "downstream")

MAX_WAIT_MS = 24 * 60 * 60 * 1000  # a day: longer is a hang, not a fault to drill
MAX_SIZE = 2**31 - 1  # bytes or KB/s: far beyond any chunk or link
MAX_INT64 = 2**63 - 1  # Go's int64, Toxiproxy's own bound

# Each toxic type, its integer attributes in the order Toxiproxy shows them, and the largest value each
# accepts (the smallest is 0). Documented in this module's docstring; keep the two in step.
ATTRIBUTE_MAXIMA: dict[str, dict[str, int]] = {
    "latency": {"latency": MAX_WAIT_MS, "jitter": MAX_WAIT_MS},
    "bandwidth": {"rate": MAX_SIZE},
    "slow_close": {"delay": MAX_WAIT_MS},
    "timeout": {"timeout": MAX_WAIT_MS},
    "reset_peer": {"timeout": MAX_WAIT_MS},
    "slicer": {"average_size": MAX_SIZE, "size_variation": MAX_SIZE, "delay": MAX_WAIT_MS * 1000},  # delay in µs
    "limit_data": {"bytes": MAX_INT64},  # only counted, never converted: Toxiproxy's own bound is safe here
}

# Each toxic type and its integer attributes, in the order Toxiproxy shows them.
TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {name: tuple(limits) for name, limits in ATTRIBUTE_MAXIMA.items()}

# Toxicity rolls; seed it (`--seed`) to make a drill's random choices repeatable.
rng = random.Random()  # noqa: S311 - fault injection, not cryptography


@dataclass(frozen=True)
class Toxic:
    """A toxic as the API shows it."""

    name: str
    type: str
    stream: str  # as given (Toxiproxy keeps the caller's spelling); `direction` is the parsed value
    toxicity: float
    attributes: Mapping[str, int]

    @property
    def direction(self) -> Direction:
        return "upstream" if self.stream.lower() == "upstream" else "downstream"

    def as_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def _expect(value: object, kind: type | tuple[type, ...], what: str) -> None:
    # bool is an int in Python, but not a JSON number.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BAD_REQUEST_BODY.joined(f"{what} has the wrong type ({type(value).__name__})")


def _attributes(toxic_type: str, given: object, base: Mapping[str, int]) -> dict[str, int]:
    """Merge `given` into `base`: integers in 0..ATTRIBUTE_MAXIMA; unknown keys are ignored (as Go's JSON
    decoding does)."""
    if given is None:
        return dict(base)
    if not isinstance(given, dict):
        raise BAD_REQUEST_BODY.joined("attributes must be an object")
    merged = dict(base)
    for key, maximum in ATTRIBUTE_MAXIMA[toxic_type].items():
        value = given.get(key)
        if value is None:
            continue
        _expect(value, int, f"attribute {key!r}")
        # Toxiproxy would take negatives and anything up to int64 here; see the module docstring for why not.
        if not 0 <= value <= maximum:
            raise BAD_REQUEST_BODY.joined(f"attribute {key!r} must be between 0 and {maximum}")
        merged[key] = value
    if toxic_type == "slicer":
        # Toxiproxy itself crashes on these (endless recursion, rand.Intn(0)); refuse them instead.
        if merged["average_size"] < 1:
            raise BAD_REQUEST_BODY.joined("slicer average_size must be at least 1")
        if merged["size_variation"] >= merged["average_size"]:
            raise BAD_REQUEST_BODY.joined("slicer size_variation must be smaller than average_size")
    return merged


def _toxicity(value: object, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BAD_REQUEST_BODY.joined(f"toxicity has the wrong type ({type(value).__name__})")
    # Compared before any float() (10^400 has no float) and refusing NaN (it compares false); Toxiproxy
    # accepts negatives (never) and values above 1 (always), which are typos for a probability.
    if not (0 <= value <= 1 and math.isfinite(value)):
        raise BAD_REQUEST_BODY.joined("toxicity must be a finite number between 0 and 1")
    return float(value)


def parse_new_toxic(body: object, taken_names: Container[str]) -> Toxic:
    """A toxic from a `POST /proxies/{proxy}/toxics` body, with Toxiproxy's defaults, errors and their order."""
    if not isinstance(body, dict):
        raise BAD_REQUEST_BODY.joined("expected a JSON object")
    for key in ("name", "type", "stream"):
        if body.get(key) is not None:
            _expect(body[key], str, key)
    stream = body.get("stream") or "downstream"
    if stream.lower() not in DIRECTIONS:
        raise INVALID_STREAM
    toxic_type = body.get("type") or ""
    name = body.get("name") or f"{toxic_type}_{stream}"
    if toxic_type not in TOXIC_ATTRIBUTES:
        raise INVALID_TOXIC_TYPE
    if name in taken_names:
        raise TOXIC_ALREADY_EXISTS
    defaults = dict.fromkeys(TOXIC_ATTRIBUTES[toxic_type], 0)
    return Toxic(
        name=name,
        type=toxic_type,
        stream=stream,
        toxicity=_toxicity(body.get("toxicity"), 1.0),
        attributes=_attributes(toxic_type, body.get("attributes"), defaults),
    )


def parse_toxic_update(existing: Toxic, body: object) -> Toxic:
    """`POST /proxies/{proxy}/toxics/{toxic}`: new attributes merge into the old; name/type/stream stay."""
    if not isinstance(body, dict):
        raise BAD_REQUEST_BODY.joined("expected a JSON object")
    return replace(
        existing,
        toxicity=_toxicity(body.get("toxicity"), existing.toxicity),
        attributes=_attributes(existing.type, body.get("attributes"), existing.attributes),
    )


# -- per-link behaviour ------------------------------------------------------------------------------


@dataclass(slots=True)
class Chunk:
    """Bytes read from a link's source, and when (loop time) they arrived."""

    data: bytes
    timestamp: float


Emit = Callable[[Chunk], Awaitable[None]]


class CloseLink(Exception):
    """Raised by a toxic to close its link (and with it the connection), optionally with a reset."""

    def __init__(self, *, reset: bool) -> None:
        super().__init__("closed by toxic")
        self.reset = reset
        self.runtime: ToxicRuntime | None = None


class LinkControl(Protocol):
    """What a toxic may do to the link it runs on outside the flow of data (timers)."""

    def close_by_toxic(self, runtime: ToxicRuntime, *, reset: bool) -> None: ...

    def toxic_failed(self, runtime: ToxicRuntime, error: Exception) -> None:
        """The runtime raised unexpectedly: reset the connection (never leave it hung) and log it once."""
        ...


@dataclass
class ToxicRuntime:
    """One toxic on one link: rolls its toxicity once, and can be interrupted (removed or updated)."""

    toxic: Toxic
    link: LinkControl
    active: bool = field(init=False)
    interrupted: bool = field(default=False, init=False)
    _waiter: asyncio.Future[bool] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.active = rng.random() < self.toxic.toxicity

    def attribute(self, name: str) -> int:
        return self.toxic.attributes[name]

    def start(self) -> None:
        """Called once the runtime is in its link's chain."""

    def inherit(self, previous: ToxicRuntime) -> None:
        """Carry per-link state over an update of the toxic (Toxiproxy keeps a stub's state)."""

    def closes_on_removal(self) -> bool:
        return False

    def interrupt(self) -> None:
        """The toxic was removed or replaced: stop waiting, let data through."""
        self.interrupted = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)

    async def pipe(self, chunk: Chunk, emit: Emit) -> None:
        if self.active and not self.interrupted:
            await self.apply(chunk, emit)
        else:
            await emit(chunk)

    async def apply(self, chunk: Chunk, emit: Emit) -> None:
        await emit(chunk)

    async def at_eof(self) -> None:
        """The link's input ended; runs before the close is passed on."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """A timer for this runtime; if `callback` raises, the link's connection is reset, not left hung."""
        return asyncio.get_running_loop().call_later(seconds, self._run_timer, callback)

    def _run_timer(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception as error:
            self.link.toxic_failed(self, error)

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless interrupted first; True when the whole time passed."""
        if self.interrupted:
            return False
        if seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        handle = loop.call_later(seconds, _resolve, waiter)
        try:
            completed: bool = await waiter
            return completed
        finally:
            handle.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)


class LatencyRuntime(ToxicRuntime):
    async def apply(self, chunk: Chunk, emit: Emit) -> None:
        delay_ms = self.attribute("latency")
        jitter = self.attribute("jitter")
        if jitter > 0:
            delay_ms += rng.randrange(2 * jitter) - jitter
        wait = chunk.timestamp + delay_ms / 1000 - asyncio.get_running_loop().time()
        # Interrupted (removed): send at once, as Toxiproxy does, rather than drop or hold the data.
        await self.sleep(wait)
        chunk.timestamp += wait
        await emit(chunk)


class BandwidthRuntime(ToxicRuntime):
    _debt_s: float = 0.0  # time owed for bytes already let through (Toxiproxy's `sleep`)

    async def apply(self, chunk: Chunk, emit: Emit) -> None:
        rate = self.attribute("rate")  # KB/s == bytes per millisecond
        if rate <= 0:
            self._debt_s = 0.0
            await emit(chunk)
            return
        data = chunk.data
        self._debt_s += len(data) / (rate * 1000)
        slice_size = rate * 100  # what may pass in 100 ms
        while len(data) > slice_size:
            if not await self.sleep(0.1):
                await emit(Chunk(data, chunk.timestamp))
                return
            await emit(Chunk(data[:slice_size], chunk.timestamp))
            data = data[slice_size:]
            self._debt_s -= 0.1
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.sleep(self._debt_s)
        self._debt_s -= loop.time() - started  # timers overshoot; the next chunk makes up for it
        await emit(Chunk(data, chunk.timestamp))


class SlowCloseRuntime(ToxicRuntime):
    async def at_eof(self) -> None:
        if self.active:
            await self.sleep(self.attribute("delay") / 1000)


class TimeoutRuntime(ToxicRuntime):
    _timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        timeout_ms = self.attribute("timeout")
        if self.active and timeout_ms > 0:
            self._timer = self.call_later(timeout_ms / 1000, self._expire)

    def _expire(self) -> None:
        if not self.interrupted:
            self.link.close_by_toxic(self, reset=False)

    def interrupt(self) -> None:
        super().interrupt()
        if self._timer is not None:
            self._timer.cancel()

    def closes_on_removal(self) -> bool:
        return self.active

    async def apply(self, chunk: Chunk, emit: Emit) -> None:
        return  # dropped on the floor


class ResetPeerRuntime(ToxicRuntime):
    async def apply(self, chunk: Chunk, emit: Emit) -> None:
        # Like Toxiproxy, the countdown is not interrupted by removing the toxic, and the data is dropped.
        await asyncio.sleep(self.attribute("timeout") / 1000)
        raise CloseLink(reset=True)


def slice_bounds(size: int, average: int, variation: int) -> list[tuple[int, int]]:
    """Toxiproxy's slicer: split [0, size) in halves around the middle ± variation until pieces are small."""
    pieces: list[tuple[int, int]] = []
    pending = [(0, size)]
    while pending:
        start, end = pending.pop()
        if (end - start) - average <= variation:
            pieces.append((start, end))
            continue
        offset = rng.randrange(2 * variation) - variation if variation > 0 else 0
        middle = start + (end - start) // 2 + offset
        pending.append((middle, end))
        pending.append((start, middle))
    return pieces


class SlicerRuntime(ToxicRuntime):
    async def apply(self, chunk: Chunk, emit: Emit) -> None:
        delay_s = self.attribute("delay") / 1_000_000
        data = chunk.data
        for start, end in slice_bounds(len(data), self.attribute("average_size"), self.attribute("size_variation")):
            await emit(Chunk(data[start:end], chunk.timestamp))
            if not await self.sleep(delay_s):
                if end < len(data):
                    await emit(Chunk(data[end:], chunk.timestamp))
                return


class LimitDataRuntime(ToxicRuntime):
    transmitted: int = 0

    def inherit(self, previous: ToxicRuntime) -> None:
        if isinstance(previous, LimitDataRuntime):
            self.transmitted = previous.transmitted

    async def apply(self, chunk: Chunk, emit: Emit) -> None:
        limit = self.attribute("bytes")
        remaining = max(limit - self.transmitted, 0)
        data = chunk.data if len(chunk.data) <= remaining else chunk.data[:remaining]
        if data:
            self.transmitted += len(data)
            await emit(Chunk(data, chunk.timestamp))
        if limit - self.transmitted <= 0:
            raise CloseLink(reset=False)


RUNTIMES: dict[str, type[ToxicRuntime]] = {
    "latency": LatencyRuntime,
    "bandwidth": BandwidthRuntime,
    "slow_close": SlowCloseRuntime,
    "timeout": TimeoutRuntime,
    "reset_peer": ResetPeerRuntime,
    "slicer": SlicerRuntime,
    "limit_data": LimitDataRuntime,
}


def runtime_for(toxic: Toxic, link: LinkControl) -> ToxicRuntime:
    return RUNTIMES[toxic.type](toxic, link)


__all__ = [
    "ATTRIBUTE_MAXIMA",
    "DIRECTIONS",
    "RUNTIMES",
    "TOXIC_ATTRIBUTES",
    "Chunk",
    "CloseLink",
    "Direction",
    "Emit",
    "LinkControl",
    "Toxic",
    "ToxicRuntime",
    "parse_new_toxic",
    "parse_toxic_update",
    "runtime_for",
    "slice_bounds",
]
