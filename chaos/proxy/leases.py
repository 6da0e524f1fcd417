"""Fault leases, an extension beyond Toxiproxy's API: a fault that undoes itself when its lease ends.

A harness that dies (kill -9, a lost laptop, a CI timeout) cannot run its rollbacks, and a fault it left on a
shared deployment would stay until someone notices. A lease bounds that: a toxic added with `"lease_s": N`
is removed by the proxy N seconds later, and a proxy disabled with `"lease_s": N` is enabled again; posting
a new `lease_s` renews it from now. Each lease is one timer on the event loop (`loop.call_at`), cancelled
when the fault goes away first, so a proxy without leases does no lease work at all.

`lease_s` is a JSON number, > 0 and <= MAX_LEASE_S; anything else is a 400 in Toxiproxy's error shape and
changes nothing. Answers show a lease as `"lease_expires_in_s"` (seconds left); without one the field is
absent, so a caller that never sends `lease_s` sees Toxiproxy's JSON unchanged.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from typing import Any

from chaos.proxy.errors import BAD_REQUEST_BODY, ApiError

LEASE_FIELD = "lease_s"
EXPIRES_FIELD = "lease_expires_in_s"
MAX_LEASE_S = 3600.0  # an hour: a game day's longest hold; longer is a fault someone forgot
DEFAULT_LEASE_ENV = "FAULT_PROXY_DEFAULT_LEASE_S"

LEASE_RANGE = f"a number of seconds greater than 0 and at most {MAX_LEASE_S:g}"


def check_lease_s(value: object) -> float:
    """`value` as a lease duration, or ValueError saying what a lease must be."""
    # bool is an int in Python, not a JSON number; compared before float() (10^400 has no float), and a
    # literal like 1e999 parses as inf, which the finiteness check refuses.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{LEASE_FIELD} must be {LEASE_RANGE} (got {type(value).__name__})")
    if not (0 < value <= MAX_LEASE_S and math.isfinite(value)):
        raise ValueError(f"{LEASE_FIELD} must be {LEASE_RANGE} (got {value!r})")
    return float(value)


def parse_lease(body: Mapping[str, Any]) -> float | None:
    """The body's `lease_s` (None when absent or null, as Toxiproxy's optional fields are); 400 when bad."""
    value = body.get(LEASE_FIELD)
    if value is None:
        return None
    try:
        return check_lease_s(value)
    except ValueError as error:
        raise BAD_REQUEST_BODY.joined(str(error)) from None


def refuse_lease(body: object, where: str) -> None:
    """400 when a body that cannot carry a lease has one: silently ignoring it would leave a fault unbounded."""
    if isinstance(body, dict) and body.get(LEASE_FIELD) is not None:
        raise ApiError(
            f"bad request body: {LEASE_FIELD} is not accepted {where}; it applies to a toxic "
            "(POST /proxies/{proxy}/toxics[/{toxic}]) or to disabling a proxy (POST /proxies/{proxy} "
            'with "enabled": false)',
            400,
        )


class Lease:
    """One timer: `on_expiry(lease)` runs on the loop `duration_s` seconds from now unless cancelled first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, duration_s: float, on_expiry: Callable[[Lease], None]) -> None:
        self.duration_s = duration_s
        self.deadline = loop.time() + duration_s
        self._loop = loop
        self._handle = loop.call_at(self.deadline, on_expiry, self)

    def remaining_s(self) -> float:
        # Rounded for people reading it; never negative while the expiry is being carried out.
        return round(max(0.0, self.deadline - self._loop.time()), 3)

    def cancel(self) -> None:
        self._handle.cancel()
