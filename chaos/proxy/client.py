"""toxiproxy-python, bound to one Toxiproxy server: the only way drills talk to a fault proxy.

toxiproxy-python 0.1.1 keeps the server address in class attributes of `toxiproxy.api.APIConsumer`, shared
by every `Toxiproxy` and `Proxy` object in the process: two clients for two servers would silently talk to
whichever address was set last, and `Toxiproxy.update_api_consumer` changes that global for everyone. It also
takes a bare host and port, not a URL. This adapter gives each client its own address (from a URL,
`TOXIPROXY_URL`, or Toxiproxy's default) and sets the shared attributes only for the duration of each call,
under a lock, so clients for different servers (the project's fault proxy, a real Toxiproxy) can coexist.

    client = ToxiproxyClient()                      # $TOXIPROXY_URL, else http://127.0.0.1:8474
    postgres = client.proxy("postgres")
    with postgres.toxic(type="latency", attributes={"latency": 300}):
        ...                                          # every database round trip is 300 ms slower here
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import toxiproxy  # type: ignore[import-untyped]
from toxiproxy.api import APIConsumer  # type: ignore[import-untyped]
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists  # type: ignore[import-untyped]

TOXIPROXY_URL_ENV = "TOXIPROXY_URL"
DEFAULT_URL = "http://127.0.0.1:8474"

# Serialises every call, because the address it uses is process-wide state inside toxiproxy-python.
_address_lock = threading.RLock()

__all__ = [
    "DEFAULT_URL",
    "TOXIPROXY_URL_ENV",
    "InvalidToxic",
    "NotFound",
    "ProxyExists",
    "ProxyHandle",
    "ToxicInfo",
    "ToxiproxyClient",
]


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"Toxiproxy URL {url!r} must look like http://host:port")
    if ":" in parts.hostname:
        raise ValueError(f"Toxiproxy URL {url!r}: toxiproxy-python cannot reach IPv6 addresses")
    return parts.hostname, parts.port or 8474


@dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


class ToxiproxyClient:
    """A Toxiproxy server at one address; every call goes through toxiproxy-python."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or os.environ.get(TOXIPROXY_URL_ENV) or DEFAULT_URL
        self.host, self.port = _host_port(self.url)
        self._server = toxiproxy.Toxiproxy()

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self.url!r})"

    @contextlib.contextmanager
    def bound(self) -> Iterator[None]:
        """Point toxiproxy-python at this server for the duration of the block (and only this thread)."""
        with _address_lock:
            saved = APIConsumer.host, APIConsumer.port
            APIConsumer.host, APIConsumer.port = self.host, self.port
            try:
                yield
            finally:
                APIConsumer.host, APIConsumer.port = saved

    def running(self) -> bool:
        with self.bound():
            return bool(self._server.running())

    def version(self) -> str | None:
        """The server's version (`{"version": ...}` from Toxiproxy 2.x, plain text from older ones)."""
        with self.bound():
            raw = self._server.version()
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(text)["version"])
        return text.strip()

    def proxies(self) -> dict[str, ProxyHandle]:
        with self.bound():
            found = self._server.proxies()
        return {str(name): ProxyHandle(self, proxy) for name, proxy in found.items()}

    def get_proxy(self, name: str) -> ProxyHandle | None:
        return self.proxies().get(name)

    def proxy(self, name: str) -> ProxyHandle:
        """The named proxy; NotFound when the server has none by that name."""
        found = self.get_proxy(name)
        if found is None:
            raise NotFound(f"no proxy named {name!r} on {self.url}")
        return found

    def create(
        self, *, name: str, upstream: str, listen: str | None = None, enabled: bool | None = None
    ) -> ProxyHandle:
        """A new proxy (ProxyExists when the name is taken); `listen` defaults to 127.0.0.1:0, any port."""
        with self.bound():
            proxy = self._server.create(upstream=upstream, name=name, listen=listen, enabled=enabled)
        return ProxyHandle(self, proxy)

    def populate(self, proxies: Sequence[Mapping[str, Any]]) -> dict[str, ProxyHandle]:
        """Make sure each proxy exists as described (recreating one whose listen/upstream differ)."""
        with self.bound():
            self._server.populate([dict(proxy) for proxy in proxies])
        existing = self.proxies()
        return {str(proxy["name"]): existing[str(proxy["name"])] for proxy in proxies}

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        with self.bound():
            self._server.reset()

    def destroy_all(self) -> None:
        with self.bound():
            self._server.destroy_all()


class ProxyHandle:
    """One proxy on a `ToxiproxyClient`'s server."""

    def __init__(self, client: ToxiproxyClient, proxy: Any) -> None:
        self.client = client
        self._proxy = proxy

    def __repr__(self) -> str:
        return f"ProxyHandle({self.name!r}, listen={self.listen!r}, upstream={self.upstream!r})"

    @property
    def name(self) -> str:
        return str(self._proxy.name)

    @property
    def listen(self) -> str:
        return str(self._proxy.listen)

    @property
    def upstream(self) -> str:
        return str(self._proxy.upstream)

    @property
    def enabled(self) -> bool:
        return bool(self._proxy.enabled)

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def add_toxic(
        self,
        *,
        type: str,  # shadows the builtin: Toxiproxy's and toxiproxy-python's own name
        attributes: Mapping[str, int] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic and return its name (default `<type>_<stream>`, as Toxiproxy names it)."""
        toxic_name = name or f"{type}_{stream}"
        with self.client.bound():
            self._proxy.add_toxic(
                type=type, attributes=dict(attributes or {}), stream=stream, toxicity=toxicity, name=toxic_name
            )
        return toxic_name

    def destroy_toxic(self, name: str) -> None:
        with self.client.bound():
            self._proxy.destroy_toxic(name)

    @contextlib.contextmanager
    def toxic(
        self,
        *,
        type: str,
        attributes: Mapping[str, int] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> Iterator[str]:
        """The toxic for the duration of the block; removed afterwards even when the block fails."""
        toxic_name = self.add_toxic(type=type, attributes=attributes, stream=stream, toxicity=toxicity, name=name)
        try:
            yield toxic_name
        finally:
            with contextlib.suppress(NotFound):
                self.destroy_toxic(toxic_name)

    def toxics(self) -> dict[str, ToxicInfo]:
        with self.client.bound():
            found = self._proxy.toxics()
        return {
            str(name): ToxicInfo(
                name=str(toxic.name),
                type=str(toxic.type),
                stream=str(toxic.stream),
                toxicity=float(toxic.toxicity),
                attributes=dict(toxic.attributes),
            )
            for name, toxic in found.items()
        }

    def disable(self) -> None:
        """Stop listening and drop every live connection."""
        with self.client.bound():
            self._proxy.disable()

    def enable(self) -> None:
        with self.client.bound():
            self._proxy.enable()

    @contextlib.contextmanager
    def down(self) -> Iterator[ProxyHandle]:
        """Disabled for the duration of the block, enabled again afterwards."""
        self.disable()
        try:
            yield self
        finally:
            self.enable()

    def destroy(self) -> None:
        with self.client.bound():
            self._proxy.destroy()
