"""One TLS context for all of a process's HTTP clients.

httpx builds a fresh `ssl.SSLContext` for every client and loads the whole CA bundle into it — about 45 ms of
CPU each on this machine, even for a plain-http loopback URL that never uses it. The conformance checks and the
drills poll with a new client per probe: 434 clients spent 21 s of a 100 s conformance run there (cProfile of
`python -m conformance`). One context, built as httpx builds its default (SSL_CERT_FILE, else SSL_CERT_DIR,
else certifi's bundle, verifying certificates and host names), serves every client: an SSLContext may be shared
between clients and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process."""
    return httpx.create_ssl_context()
