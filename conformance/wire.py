"""Raw HTTP/1.1 over a socket, for what ordinary clients cannot do: declare a body and never send it, or
stream a chunked body and stop as soon as the server has answered."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _expected_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.decode(errors="replace").split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(head) + 4 + int(line.split(":", 1)[1])
    return 0


def _server_has_answered(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


def raw_post(
    base_url: str,
    path: str,
    headers: dict[str, str],
    body_parts: list[bytes],
    *,
    stop_when_answered: bool = False,
    timeout: float = 10.0,
) -> RawResponse:
    """POST `path` with exactly these headers and body parts; with stop_when_answered, stop sending once the
    server has started its response (as a client whose upload the server refused early)."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall("\r\n".join(lines).encode())
        for part in body_parts:
            if stop_when_answered and _server_has_answered(sock):
                break
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
            received = sock.recv(65536)
            if not received:
                break
            data += received
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode(errors="replace").split("\r\n")
    parsed = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return RawResponse(int(status_line.split()[1]), parsed, payload)


def connect(base_url: str, *, timeout: float = 10.0) -> socket.socket:
    """A plain TCP connection to the target, for requests written byte by byte."""
    url = urlsplit(base_url)
    return socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=timeout)


def read_until_closed(sock: socket.socket, within_s: float) -> bytes:
    """Everything the server sends until it closes (or resets) the connection, waiting at most `within_s`
    for each part; raises TimeoutError if the connection stays open and silent that long."""
    data = b""
    sock.settimeout(within_s)
    try:
        while received := sock.recv(65536):
            data += received
    except ConnectionResetError:
        pass
    return data


def status_of(data: bytes) -> int | None:
    """The status of the HTTP/1.1 response at the start of `data`, if there is one."""
    head = data.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[0].startswith(b"HTTP/") and head[1].isdigit() else None


def body_of(data: bytes) -> Any:
    return json.loads(data.split(b"\r\n\r\n", 1)[1])
