"""Proxies and their toxics: what the HTTP API manages, with Toxiproxy's rules for each operation.

Beyond Toxiproxy, a toxic or a disabled proxy may carry a lease (leases.py): when it ends, the collection
removes the toxic or enables the proxy again, under the same lock as every API change.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from chaos.proxy.addresses import AddressError, AddressPolicy, join_host_port
from chaos.proxy.errors import (
    BAD_REQUEST_BODY,
    MISSING_FIELD,
    PROXY_ALREADY_EXISTS,
    PROXY_NOT_FOUND,
    TOXIC_NOT_FOUND,
    ApiError,
)
from chaos.proxy.leases import EXPIRES_FIELD, LEASE_FIELD, Lease, check_lease_s, parse_lease, refuse_lease
from chaos.proxy.link import Connection, Endpoint
from chaos.proxy.toxics import DIRECTIONS, Direction, Toxic, parse_new_toxic, parse_toxic_update

log = logging.getLogger("chaos.proxy")

DEFAULT_LISTEN = "127.0.0.1:0"
# A proxy whose lease ended but whose port someone else took meanwhile is tried again this often.
REENABLE_RETRY_S = 1.0


@dataclass(frozen=True)
class ProxySpec:
    """A proxy as a create/populate/update request describes it."""

    name: str
    listen: str
    upstream: str
    enabled: bool


def _field(body: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BAD_REQUEST_BODY.joined(f"{key} must be a {kind.__name__}")
    return value


def parse_proxy_spec(body: object, *, defaults: ProxySpec | None = None, position: int | None = None) -> ProxySpec:
    """Validate a proxy body; `defaults` (an update) fills what the body leaves out."""
    if not isinstance(body, dict):
        raise BAD_REQUEST_BODY.joined("expected a JSON object")
    where = f" at proxy {position}" if position is not None else ""
    name = _field(body, "name", str, defaults.name if defaults else "")
    upstream = _field(body, "upstream", str, defaults.upstream if defaults else "")
    if not name:
        raise MISSING_FIELD.joined(f"name{where}")
    if not upstream:
        raise MISSING_FIELD.joined(f"upstream{where}")
    return ProxySpec(
        name=name,
        listen=_field(body, "listen", str, defaults.listen if defaults else "") or DEFAULT_LISTEN,
        upstream=upstream,
        enabled=_field(body, "enabled", bool, defaults.enabled if defaults else True),
    )


class Proxy:
    """A listener that relays every accepted connection to `upstream`, through this proxy's toxics."""

    def __init__(self, spec: ProxySpec, policy: AddressPolicy) -> None:
        self.name = spec.name
        self.listen = spec.listen
        self.upstream = spec.upstream
        self.enabled = False
        self.policy = policy
        self.toxics: list[Toxic] = []
        self.connections: set[Connection] = set()
        # Leases by toxic name, and the one on this proxy's disabled state (never set while enabled).
        self.toxic_leases: dict[str, Lease] = {}
        self.disabled_lease: Lease | None = None
        self._server: asyncio.Server | None = None
        _check(policy, spec)

    def as_json(self) -> dict[str, Any]:
        ordered = [toxic for direction in DIRECTIONS for toxic in self.chain(direction)]
        shown: dict[str, Any] = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [self.toxic_json(toxic) for toxic in ordered],
        }
        if self.disabled_lease is not None:
            shown[EXPIRES_FIELD] = self.disabled_lease.remaining_s()
        return shown

    def toxic_json(self, toxic: Toxic) -> dict[str, Any]:
        """The toxic as Toxiproxy shows it, plus `lease_expires_in_s` when it has a lease."""
        shown = toxic.as_json()
        lease = self.toxic_leases.get(toxic.name)
        if lease is not None:
            shown[EXPIRES_FIELD] = lease.remaining_s()
        return shown

    def chain(self, direction: Direction) -> list[Toxic]:
        return [toxic for toxic in self.toxics if toxic.direction == direction]

    # -- listening -------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.enabled:
            return
        host, port = self.policy.bind_host(self.listen)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._accept, host, port, reuse_address=True, backlog=512)
        except OSError as error:
            raise ApiError(f"listen tcp {self.listen}: {error.strerror or error}", 500) from error
        self.set_disabled_lease(None)
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        # Like Toxiproxy, report the real address once listening (an ephemeral port becomes concrete).
        self.listen = join_host_port(bound_host, bound_port)
        self.enabled = True
        log.info("proxy %s: listening on %s, upstream %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening and drop every live connection (Toxiproxy's "down")."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self.connections):
            connection.drop()
        self.connections.clear()
        if server is not None:
            await server.wait_closed()
        log.info("proxy %s: stopped", self.name)

    def _accept(self) -> Endpoint:
        connection = Connection(self)
        self.connections.add(connection)
        return connection.client

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)

    # -- toxics ----------------------------------------------------------------------------------------
    def toxic(self, name: str) -> Toxic:
        for toxic in self.toxics:
            if toxic.name == name:
                return toxic
        raise TOXIC_NOT_FOUND

    def add_toxic(self, body: object) -> Toxic:
        toxic = parse_new_toxic(body, {existing.name for existing in self.toxics})
        self.toxics.append(toxic)
        for connection in list(self.connections):  # a runtime that fails resets (and so forgets) its connection
            connection.add_toxic(toxic)
        log.info("proxy %s: toxic %s added: %s", self.name, toxic.name, toxic.as_json())
        return toxic

    def update_toxic(self, name: str, body: object) -> Toxic:
        toxic = parse_toxic_update(self.toxic(name), body)
        self.toxics[[existing.name for existing in self.toxics].index(name)] = toxic
        for connection in list(self.connections):
            connection.update_toxic(toxic)
        log.info("proxy %s: toxic %s updated: %s", self.name, name, toxic.as_json())
        return toxic

    def remove_toxic(self, name: str) -> None:
        toxic = self.toxic(name)
        self.set_toxic_lease(name, None)
        self.toxics.remove(toxic)
        for connection in list(self.connections):
            connection.remove_toxic(toxic)
        log.info("proxy %s: toxic %s removed", self.name, name)

    def remove_all_toxics(self) -> None:
        for toxic in list(self.toxics):
            self.remove_toxic(toxic.name)

    # -- leases ----------------------------------------------------------------------------------------
    def set_toxic_lease(self, name: str, lease: Lease | None) -> None:
        """Replace the toxic's lease (None: no lease); the old timer is cancelled."""
        old = self.toxic_leases.pop(name, None)
        if old is not None:
            old.cancel()
        if lease is not None:
            self.toxic_leases[name] = lease

    def set_disabled_lease(self, lease: Lease | None) -> None:
        old, self.disabled_lease = self.disabled_lease, lease
        if old is not None:
            old.cancel()

    def cancel_leases(self) -> None:
        for name in list(self.toxic_leases):
            self.set_toxic_lease(name, None)
        self.set_disabled_lease(None)


def _check(policy: AddressPolicy, spec: ProxySpec) -> None:
    try:
        policy.check_upstream(spec.upstream)
        policy.bind_host(spec.listen)
    except AddressError as error:
        raise BAD_REQUEST_BODY.joined(str(error)) from error


class ProxyCollection:
    """All proxies by name. Changes are serialised, so two requests never race on one name or port."""

    def __init__(self, policy: AddressPolicy | None = None, *, default_lease_s: float | None = None) -> None:
        self.policy = policy or AddressPolicy()
        self.proxies: dict[str, Proxy] = {}
        # The lease every fault gets when its request names none (None: such faults stay, as in Toxiproxy).
        self.default_lease_s = None if default_lease_s is None else check_lease_s(default_lease_s)
        self._lock: asyncio.Lock | None = None
        self._expiries: set[asyncio.Task[None]] = set()

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise PROXY_NOT_FOUND from None

    async def create(self, body: object) -> Proxy:
        spec = parse_proxy_spec(body)
        refuse_lease(body, "when creating a proxy")
        async with self.lock:
            if spec.name in self.proxies:
                raise PROXY_ALREADY_EXISTS
            proxy = Proxy(spec, self.policy)
            if spec.enabled:
                await proxy.start()
            self.proxies[spec.name] = proxy
            return proxy

    async def populate(self, body: object) -> tuple[list[Proxy], ApiError | None]:
        """Create or replace each proxy; one that matches (same listen and upstream) is left alone.

        Everything is validated before anything changes; the proxies handled before a failure (a port in
        use) are returned with the error, as Toxiproxy does."""
        if not isinstance(body, list):
            raise BAD_REQUEST_BODY.joined("expected a JSON array of proxies")
        specs = [parse_proxy_spec(item, position=index + 1) for index, item in enumerate(body)]
        for item in body:
            refuse_lease(item, "in /populate")
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise BAD_REQUEST_BODY.joined(f"duplicate proxy name {duplicates[0]!r}")
        for spec in specs:
            _check(self.policy, spec)
        done: list[Proxy] = []
        async with self.lock:
            for spec in specs:
                existing = self.proxies.get(spec.name)
                if existing is not None and self._same_addresses(existing, spec):
                    done.append(existing)
                    continue
                if existing is not None:
                    await existing.stop()
                    existing.cancel_leases()
                    del self.proxies[spec.name]
                proxy = Proxy(spec, self.policy)
                try:
                    if spec.enabled:
                        await proxy.start()
                except ApiError as error:
                    return done, error
                self.proxies[spec.name] = proxy
                done.append(proxy)
        return done, None

    def _same_addresses(self, existing: Proxy, spec: ProxySpec) -> bool:
        if existing.upstream != spec.upstream:
            return False
        try:
            wanted = self.policy.bind_host(spec.listen)
            current = self.policy.bind_host(existing.listen)
        except AddressError:
            return False
        return wanted[1] != 0 and wanted == current

    async def update(self, name: str, body: object) -> Proxy:
        async with self.lock:
            proxy = self.get(name)
            current = ProxySpec(proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
            spec = parse_proxy_spec(body, defaults=current)
            _check(self.policy, spec)
            asked_down = isinstance(body, dict) and body.get("enabled") is False
            lease_s = parse_lease(body) if isinstance(body, dict) else None  # (parse_proxy_spec wants a dict)
            if spec.enabled and lease_s is not None:
                raise ApiError(
                    f'bad request body: {LEASE_FIELD} applies to a disabled proxy; send "enabled": false with it',
                    400,
                )
            if lease_s is None and asked_down and proxy.disabled_lease is None:
                lease_s = self.default_lease_s  # a new "down" fault; re-posting one keeps its lease
            if spec.listen != proxy.listen or spec.upstream != proxy.upstream:
                await proxy.stop()  # a new address drops live connections, as in Toxiproxy
                proxy.listen, proxy.upstream = spec.listen, spec.upstream
            if spec.enabled:
                await proxy.start()  # which ends any lease on the disabled state
            else:
                await proxy.stop()
                if lease_s is not None:
                    lease = self._lease(lease_s, functools.partial(self._disabled_lease_ended, proxy))
                    proxy.set_disabled_lease(lease)
                    log.info("proxy %s: disabled, leased for %gs from now", proxy.name, lease_s)
            return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            proxy.remove_all_toxics()
            proxy.cancel_leases()
            del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (and with them every lease)."""
        async with self.lock:
            for proxy in self.proxies.values():
                proxy.cancel_leases()  # first, so a proxy that cannot listen again keeps no timer either
                await proxy.start()
                proxy.remove_all_toxics()

    async def close(self) -> None:
        async with self.lock:
            for proxy in self.proxies.values():
                await proxy.stop()
                proxy.remove_all_toxics()
                proxy.cancel_leases()
            self.proxies.clear()
            for task in list(self._expiries):
                task.cancel()  # each is waiting for this lock, and finds its proxy gone anyway

    # -- toxics, with their leases (called under `lock`) -----------------------------------------------
    def add_toxic(self, proxy: Proxy, body: object) -> Toxic:
        """`POST /proxies/{proxy}/toxics`: Toxiproxy's add, plus the lease (`lease_s`, else the default)."""
        lease_s = parse_lease(body) if isinstance(body, dict) else None  # checked before anything changes
        toxic = proxy.add_toxic(body)
        if lease_s is None:
            lease_s = self.default_lease_s
        if lease_s is not None:
            proxy.set_toxic_lease(toxic.name, self._toxic_lease(proxy, toxic.name, lease_s))
            log.info("proxy %s: toxic %s leased for %gs", proxy.name, toxic.name, lease_s)
        return toxic

    def update_toxic(self, proxy: Proxy, name: str, body: object) -> Toxic:
        """`POST /proxies/{proxy}/toxics/{toxic}`: Toxiproxy's update; `lease_s` renews the lease from now.

        A body with nothing but `lease_s` only renews: the toxic's connections keep their runtimes and
        toxicity rolls, which a Toxiproxy update would replace."""
        lease_s = parse_lease(body) if isinstance(body, dict) else None
        renewal_only = (
            isinstance(body, dict)
            and lease_s is not None
            and body.get("attributes") is None
            and body.get("toxicity") is None
        )
        toxic = proxy.toxic(name) if renewal_only else proxy.update_toxic(name, body)
        if lease_s is not None:
            proxy.set_toxic_lease(name, self._toxic_lease(proxy, name, lease_s))
            log.info("proxy %s: toxic %s leased for %gs from now", proxy.name, name, lease_s)
        return toxic

    # -- lease expiry ----------------------------------------------------------------------------------
    def _lease(self, duration_s: float, on_expiry: Callable[[Lease], Coroutine[Any, Any, None]]) -> Lease:
        def expired(lease: Lease) -> None:
            # A timer callback cannot await the lock; the task does, so an expiry never interleaves with a
            # request that is half way through changing the same proxy.
            task = asyncio.get_running_loop().create_task(on_expiry(lease))
            self._expiries.add(task)
            task.add_done_callback(self._expiries.discard)

        return Lease(asyncio.get_running_loop(), duration_s, expired)

    def _toxic_lease(self, proxy: Proxy, name: str, duration_s: float) -> Lease:
        return self._lease(duration_s, functools.partial(self._toxic_lease_ended, proxy, name))

    async def _toxic_lease_ended(self, proxy: Proxy, name: str, lease: Lease) -> None:
        async with self.lock:
            if self.proxies.get(proxy.name) is not proxy or proxy.toxic_leases.get(name) is not lease:
                return  # removed, renewed or reset while this waited for the lock
            log.warning("proxy %s: lease of toxic %s ended (%gs): removing it", proxy.name, name, lease.duration_s)
            proxy.remove_toxic(name)

    async def _disabled_lease_ended(self, proxy: Proxy, lease: Lease) -> None:
        async with self.lock:
            if self.proxies.get(proxy.name) is not proxy or proxy.disabled_lease is not lease:
                return
            log.warning("proxy %s: lease of its disabled state ended (%gs): enabling it", proxy.name, lease.duration_s)
            try:
                await proxy.start()
            except ApiError as error:
                # Its port was taken meanwhile: a broken proxy must not stay down silently, so keep trying.
                log.error("proxy %s: cannot enable it (%s); trying again in %gs", proxy.name, error, REENABLE_RETRY_S)
                retry = self._lease(REENABLE_RETRY_S, functools.partial(self._disabled_lease_ended, proxy))
                proxy.set_disabled_lease(retry)
