"""The harnesses' HTTP clients share one verifying TLS context (conformance/tls.py): building one per client
cost about 45 ms of CPU each, a fifth of a conformance run."""

from __future__ import annotations

import ssl

import httpx

from conformance.target import Target
from conformance.tls import shared_tls_context


def _context_of(client: httpx.Client) -> object:
    # httpx keeps the context on its connection pool (httpcore): the one place a client's TLS settings live.
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_one_context_verifies_certificates_and_host_names() -> None:
    context = shared_tls_context()
    assert context is shared_tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0, "the CA bundle is loaded"


def test_the_checks_clients_use_it_for_http_and_https_targets_alike() -> None:
    for base_url in ("http://127.0.0.1:9", "https://staging.example"):
        with Target(base_url, None, None).client() as first, Target(base_url, None, None).client() as second:
            assert _context_of(first) is _context_of(second) is shared_tls_context()
