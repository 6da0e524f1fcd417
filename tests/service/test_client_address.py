"""Which address anonymous rate limits count against, behind trusted proxies or not."""

from __future__ import annotations

from ipaddress import IPv4Network, ip_network

import pytest

from service.auth import client_address

TRUSTED = (ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", (), "203.0.113.9"),  # no trusted proxies: the header is ignored
        ("203.0.113.9", "1.2.3.4", TRUSTED, "203.0.113.9"),  # peer is not a trusted proxy
        ("10.0.0.5", "198.51.100.7", TRUSTED, "198.51.100.7"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.0.0.9", TRUSTED, "198.51.100.7"),  # spoofed left end ignored
        ("10.0.0.5", "", TRUSTED, "10.0.0.5"),
    ],
)
def test_client_address(peer: str, forwarded_for: str, trusted: tuple[IPv4Network, ...], expected: str) -> None:
    assert client_address(peer, forwarded_for or None, trusted) == expected
