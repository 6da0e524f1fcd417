"""Proxies and their toxics: what the HTTP API manages, with Toxiproxy's rules for each operation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
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
from chaos.proxy.link import Connection, Endpoint
from chaos.proxy.toxics import DIRECTIONS, Direction, Toxic, parse_new_toxic, parse_toxic_update

log = logging.getLogger("chaos.proxy")

DEFAULT_LISTEN = "127.0.0.1:0"


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
        self._server: asyncio.Server | None = None
        _check(policy, spec)

    def as_json(self) -> dict[str, Any]:
        ordered = [toxic for direction in DIRECTIONS for toxic in self.chain(direction)]
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.as_json() for toxic in ordered],
        }

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
        self.toxics.remove(toxic)
        for connection in list(self.connections):
            connection.remove_toxic(toxic)
        log.info("proxy %s: toxic %s removed", self.name, name)

    def remove_all_toxics(self) -> None:
        for toxic in list(self.toxics):
            self.remove_toxic(toxic.name)


def _check(policy: AddressPolicy, spec: ProxySpec) -> None:
    try:
        policy.check_upstream(spec.upstream)
        policy.bind_host(spec.listen)
    except AddressError as error:
        raise BAD_REQUEST_BODY.joined(str(error)) from error


class ProxyCollection:
    """All proxies by name. Changes are serialised, so two requests never race on one name or port."""

    def __init__(self, policy: AddressPolicy | None = None) -> None:
        self.policy = policy or AddressPolicy()
        self.proxies: dict[str, Proxy] = {}
        self._lock: asyncio.Lock | None = None

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
            if spec.listen != proxy.listen or spec.upstream != proxy.upstream:
                await proxy.stop()  # a new address drops live connections, as in Toxiproxy
                proxy.listen, proxy.upstream = spec.listen, spec.upstream
            if spec.enabled:
                await proxy.start()
            else:
                await proxy.stop()
            return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            proxy.remove_all_toxics()
            del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        async with self.lock:
            for proxy in self.proxies.values():
                await proxy.start()
                proxy.remove_all_toxics()

    async def close(self) -> None:
        async with self.lock:
            for proxy in self.proxies.values():
                await proxy.stop()
                proxy.remove_all_toxics()
            self.proxies.clear()
