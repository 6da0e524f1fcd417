"""`host:port` parsing and the loopback policy every listener and upstream must pass.

Fault and load traffic may only reach this machine (or hosts an operator names explicitly, such as the
project's own containers), and a fault proxy must never be reachable from the network by accident: a
listener with no host, `localhost` or a loopback address binds 127.0.0.1 (or ::1); anything else needs an
explicit opt-in.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


class AddressError(ValueError):
    """An address that cannot be parsed, or that the policy refuses; the message says which and why."""


def split_host_port(address: str) -> tuple[str, int]:
    """`127.0.0.1:5432`, `[::1]:5432`, `localhost:0`, `:8474` → (host, port); host may be empty."""
    host, separator, port_text = address.strip().rpartition(":")
    if not separator or not port_text.isdigit():
        raise AddressError(f"address {address!r} is not host:port")
    port = int(port_text)
    if port > 65535:
        raise AddressError(f"address {address!r}: port {port} is out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"address {address!r}: write IPv6 hosts in brackets, e.g. [::1]:{port}")
    return host, port


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AddressPolicy:
    """Which upstreams may be proxied to and which addresses a listener may bind.

    `allowed_upstream_hosts` holds host names, IP addresses or networks (`10.0.0.0/8`) allowed besides
    loopback; names are compared as written, never resolved, so a DNS change cannot widen the policy.
    """

    allowed_upstream_hosts: frozenset[str] = field(default_factory=frozenset)
    allow_non_loopback_listen: bool = False

    def check_upstream(self, upstream: str) -> None:
        host, _ = split_host_port(upstream)
        if not host:
            raise AddressError(f"upstream {upstream!r} has no host")
        if is_loopback(host) or self._explicitly_allowed(host):
            return
        raise AddressError(
            f"upstream {upstream!r} is not a loopback address; fault traffic may only target this machine "
            f"unless the proxy is started with --allow-upstream {host}"
        )

    def bind_host(self, listen: str) -> tuple[str, int]:
        """The (host, port) to bind for `listen`: no host or `localhost` means 127.0.0.1."""
        host, port = split_host_port(listen)
        if not host or host.lower() == "localhost":
            return "127.0.0.1", port
        if is_loopback(host) or self.allow_non_loopback_listen:
            return host, port
        raise AddressError(
            f"listen address {listen!r} is not loopback; start the proxy with --allow-non-loopback-listen "
            "to expose it beyond this machine"
        )

    def _explicitly_allowed(self, host: str) -> bool:
        for allowed in self.allowed_upstream_hosts:
            if allowed.lower() == host.lower():
                return True
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(allowed, strict=False):
                    return True
            except ValueError:
                continue
        return False
