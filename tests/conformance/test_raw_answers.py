"""RB-SEC-NO-500's raw-request check reads one whole answer (conformance/checks/raw_answers.py), not everything
until the close: a server that keeps the connection alive after answering (as the service does) must not hold
the check for its keep-alive timeout, and an answer it keeps alive is still judged (a 5xx is read as one).

A small TCP server on 127.0.0.1 answers every connection with a fixed response and keeps it open until the
client goes, the way an HTTP/1.1 server with keep-alive does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conformance.checks.raw_answers import read_response
from conformance.wire import connect, status_of

KEPT_ALIVE = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
SERVER_ERROR = b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: 5\r\n\r\noops!"


@contextmanager
def answering(response: bytes, *, close_after: bool = False) -> Iterator[str]:
    """A server on 127.0.0.1 that sends `response` to each connection once it has received something, then
    keeps the connection open (or closes it); its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    connections: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(connection)
            connection.recv(65536)
            connection.sendall(response)
            if close_after:
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in connections:
            connection.close()
        listener.close()


@pytest.mark.parametrize("response", [KEPT_ALIVE, CHUNKED], ids=["content-length", "chunked"])
def test_an_answer_on_a_connection_kept_open_is_read_whole_without_waiting_for_the_close(response: bytes) -> None:
    with answering(response) as base_url, connect(base_url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: c\r\n\r\n")
        # The server never closes: a reader that waited for the close would raise TimeoutError here.
        assert read_response(sock, 30) == response


def test_an_answer_delimited_by_the_close_is_read_until_the_close() -> None:
    close_delimited = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\nno length"
    with answering(close_delimited, close_after=True) as base_url, connect(base_url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: c\r\n\r\n")
        assert read_response(sock, 30) == close_delimited


def test_a_5xx_on_a_connection_kept_open_is_read_with_its_status() -> None:
    with answering(SERVER_ERROR) as base_url, connect(base_url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: c\r\n\r\n")
        answer = read_response(sock, 30)
    assert status_of(answer) == 500  # what the check judges: `status is None or status < 500` fails
