"""Where load may go: loopback addresses, or a URL a profile in conformance/perf/profiles.toml names
explicitly (`url` or `allowed_urls`), so that a mistyped variable cannot load someone else's server."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit


def is_loopback_url(url: str) -> bool:
    """Does the URL name this machine (127.0.0.0/8, ::1 or localhost)?"""
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TargetRefused(Exception):
    """Load must not go to this target."""


def check_target(url: str, *, named_by_profile: Sequence[str] = ()) -> str:
    """The URL, when load may go there: loopback, or named explicitly by the profile; else TargetRefused."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetRefused(f"{url!r} is not an http(s) URL")
    normalized = url.rstrip("/")
    if is_loopback_url(normalized) or normalized in {named.rstrip("/") for named in named_by_profile}:
        return normalized
    raise TargetRefused(
        f"refusing to send load to {normalized}: it is not a loopback address and no profile in "
        "conformance/perf/profiles.toml names it (add it as the profile's `url` or to its `allowed_urls`)"
    )
