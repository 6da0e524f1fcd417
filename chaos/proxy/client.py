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

Fault leases (our proxy's extension, chaos/proxy/leases.py): `add_toxic(..., lease_s=N)`, `toxic(...,
lease_s=N)`, `disable(lease_s=N)` and `down(lease_s=N)` ask the server to undo the fault by itself N seconds
later, in case this process dies before its own cleanup; `renew_toxic(name, N)` and another
`disable(lease_s=N)` push the end to N seconds from now. A real Toxiproxy ignores `lease_s` and so answers
without `lease_expires_in_s`: then the fault is undone again at once (the toxic removed, the proxy enabled)
and `LeaseUnsupported` is raised, unless the caller passed `require_lease=False`, which accepts a fault
that stays until removed. Without `lease_s` every call is plain toxiproxy-python, as before.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import toxiproxy  # type: ignore[import-untyped]
from toxiproxy.api import APIConsumer  # type: ignore[import-untyped]
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists  # type: ignore[import-untyped]

from chaos.proxy.leases import EXPIRES_FIELD, LEASE_FIELD

TOXIPROXY_URL_ENV = "TOXIPROXY_URL"
DEFAULT_URL = "http://127.0.0.1:8474"

# Serialises every call, because the address it uses is process-wide state inside toxiproxy-python.
_address_lock = threading.RLock()

__all__ = [
    "DEFAULT_URL",
    "TOXIPROXY_URL_ENV",
    "InvalidToxic",
    "LeaseUnsupported",
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


class LeaseUnsupported(RuntimeError):
    """A fault lease was asked for and the server ignored it (a Toxiproxy without our extension)."""


@dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the server reports it; `lease_expires_in_s` is None when it has no lease."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]
    lease_expires_in_s: float | None = None


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

    @property
    def _path(self) -> str:
        return f"/proxies/{quote(self.name, safe='')}"

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One GET or POST through toxiproxy-python's consumer (so its 400/404/409 exceptions), for what its
        own methods cannot send (`lease_s`) or read back (`lease_expires_in_s`)."""
        send = APIConsumer.get if method == "GET" else functools.partial(APIConsumer.post, json=dict(body or {}))
        with self.client.bound():
            response = send(path)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} on {self.client.url}: {response.status_code} {response.text}")
        return response.json()

    def _unsupported(self, what: str, undone: str) -> LeaseUnsupported:
        return LeaseUnsupported(
            f"{self.client.url} ignored {LEASE_FIELD} for {what} (a Toxiproxy without fault leases?); {undone}. "
            "Pass require_lease=False to accept a fault without a lease, which stays until it is removed"
        )

    def add_toxic(
        self,
        *,
        type: str,  # shadows the builtin: Toxiproxy's and toxiproxy-python's own name
        attributes: Mapping[str, int] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        lease_s: float | None = None,
        require_lease: bool = True,
    ) -> str:
        """Add a toxic and return its name (default `<type>_<stream>`, as Toxiproxy names it).

        With `lease_s` the server removes the toxic by itself that many seconds later (0 < lease_s <= 3600;
        InvalidToxic otherwise); a server without leases gets the toxic removed again and LeaseUnsupported
        raised, unless `require_lease` is False."""
        toxic_name = name or f"{type}_{stream}"
        if lease_s is None:
            with self.client.bound():
                self._proxy.add_toxic(
                    type=type, attributes=dict(attributes or {}), stream=stream, toxicity=toxicity, name=toxic_name
                )
            return toxic_name
        body = {
            "name": toxic_name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
            LEASE_FIELD: lease_s,
        }
        answer = self._call("POST", f"{self._path}/toxics", body)
        if EXPIRES_FIELD not in answer and require_lease:
            with contextlib.suppress(NotFound):
                self.destroy_toxic(toxic_name)
            raise self._unsupported(f"toxic {toxic_name!r}", "the toxic was removed again")
        return toxic_name

    def renew_toxic(self, name: str, lease_s: float, *, require_lease: bool = True) -> float | None:
        """Set the toxic's lease to end `lease_s` seconds from now, without touching the toxic itself;
        returns the seconds left as the server reports them (None from a server without leases when
        `require_lease` is False, else LeaseUnsupported). NotFound when the toxic is gone."""
        answer = self._call("POST", f"{self._path}/toxics/{quote(name, safe='')}", {LEASE_FIELD: lease_s})
        if EXPIRES_FIELD not in answer:
            if require_lease:
                raise self._unsupported(f"toxic {name!r}", "nothing was changed")
            return None
        return float(answer[EXPIRES_FIELD])

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
        lease_s: float | None = None,
        require_lease: bool = True,
    ) -> Iterator[str]:
        """The toxic for the duration of the block; removed afterwards even when the block fails (and by the
        server after `lease_s` if this process never gets there)."""
        toxic_name = self.add_toxic(
            type=type,
            attributes=attributes,
            stream=stream,
            toxicity=toxicity,
            name=name,
            lease_s=lease_s,
            require_lease=require_lease,
        )
        try:
            yield toxic_name
        finally:
            with contextlib.suppress(NotFound):
                self.destroy_toxic(toxic_name)

    def toxics(self) -> dict[str, ToxicInfo]:
        # Read directly rather than through toxiproxy-python's Toxic objects, which drop lease_expires_in_s.
        found = self._call("GET", f"{self._path}/toxics")
        return {
            str(toxic["name"]): ToxicInfo(
                name=str(toxic["name"]),
                type=str(toxic["type"]),
                stream=str(toxic.get("stream", "downstream")),
                toxicity=float(toxic.get("toxicity", 1.0)),
                attributes=dict(toxic.get("attributes") or {}),
                lease_expires_in_s=None if toxic.get(EXPIRES_FIELD) is None else float(toxic[EXPIRES_FIELD]),
            )
            for toxic in found
        }

    def lease_expires_in_s(self) -> float | None:
        """Seconds until the server enables this disabled proxy by itself; None without such a lease."""
        remaining = self._call("GET", self._path).get(EXPIRES_FIELD)
        return None if remaining is None else float(remaining)

    def disable(self, *, lease_s: float | None = None, require_lease: bool = True) -> None:
        """Stop listening and drop every live connection.

        With `lease_s` the server enables the proxy again by itself that many seconds later; calling this
        again with `lease_s` renews that from now. A server without leases gets the proxy enabled again and
        LeaseUnsupported raised, unless `require_lease` is False."""
        if lease_s is None:
            with self.client.bound():
                self._proxy.disable()
            return
        answer = self._call("POST", self._path, {"enabled": False, LEASE_FIELD: lease_s})
        self._proxy.enabled = False
        if EXPIRES_FIELD not in answer and require_lease:
            self.enable()
            raise self._unsupported(f"disabling proxy {self.name!r}", "the proxy was enabled again")

    def enable(self) -> None:
        with self.client.bound():
            self._proxy.enable()

    @contextlib.contextmanager
    def down(self, *, lease_s: float | None = None, require_lease: bool = True) -> Iterator[ProxyHandle]:
        """Disabled for the duration of the block, enabled again afterwards (and by the server after
        `lease_s` if this process never gets there)."""
        self.disable(lease_s=lease_s, require_lease=require_lease)
        try:
            yield self
        finally:
            self.enable()

    def destroy(self) -> None:
        with self.client.bound():
            self._proxy.destroy()
