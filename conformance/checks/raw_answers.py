"""Reading one raw HTTP/1.1 answer from a socket, for RB-SEC-NO-500's hand-written requests.

The service keeps a connection alive after answering (up to its keep-alive timeout, REQUEST_HEADER_TIMEOUT_S):
reading until the close (conformance.wire.read_until_closed) would hold each such check that long, though the
status to judge has long arrived. This reads one whole response, or everything until the close when the
response is delimited by it."""

from __future__ import annotations

import socket


def response_complete(data: bytes) -> bool:
    """Whether `data` holds a whole response: its head, and its body as Content-Length (or the last chunk)
    delimits it. A body delimited by the close only ends when the server closes."""
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    fields = [line.split(b":", 1) for line in head.lower().split(b"\r\n")[1:] if b":" in line]
    headers = {name.strip(): value.strip() for name, value in fields}
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        return body.endswith(b"0\r\n\r\n")
    length = headers.get(b"content-length")
    return length is not None and length.isdigit() and len(body) >= int(length)


def read_response(sock: socket.socket, within_s: float) -> bytes:
    """The server's answer: one whole response, or everything it sent before closing (or resetting) the
    connection. Silence for `within_s` raises TimeoutError: a hang, which the check then shows."""
    data = b""
    sock.settimeout(within_s)
    try:
        while not response_complete(data) and (received := sock.recv(65536)):
            data += received
    except ConnectionResetError:
        pass
    return data
