"""A small HTTP/1.1 client for the query suite: one persistent connection per simulated client, cheap enough
in CPU that the load generator does not measure itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from urllib.parse import urlsplit


class HttpError(Exception):
    """The request got no HTTP answer (connection refused or lost, timeout, malformed response)."""


class KeepAliveConnection:
    """One persistent HTTP/1.1 connection for GET requests, one at a time.

    The load generator shares the machine's cores with the service it measures: httpx spends so much CPU per
    request (docs/BENCHMARKS.md, issue 14 section) that the client would be the bottleneck and count its own
    queueing as server latency. This costs a small fraction of that. It reconnects when the server closes
    the connection."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None:
            raise ValueError(f"no host in {base_url!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self._head_tail = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._head_tail = f"Host: {host_header}\r\n{self._head_tail}\r\n"
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self._host, self._port, ssl=self._tls or None)
        self._reader, self._writer = reader, writer
        return reader, writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def get(self, path_and_query: str) -> tuple[int, bytes]:
        """(status, body); HttpError when there is no answer within the timeout."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._get(path_and_query)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            await self.close()
            raise HttpError(f"{type(error).__name__}: {error}") from None

    async def _get(self, path_and_query: str) -> tuple[int, bytes]:
        if self._writer is None or self._reader is None or self._writer.is_closing():
            reader, writer = await self._connect()
        else:
            reader, writer = self._reader, self._writer
        writer.write(f"GET {self._prefix}{path_and_query} HTTP/1.1\r\n{self._head_tail}".encode("latin-1"))
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length: int | None = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                body += await reader.readexactly(size + 2)
                del body[-2:]
            payload = bytes(body)
        elif length is not None:
            payload = await reader.readexactly(length)
        else:
            payload = await reader.read()
            close = True
        if close:
            await self.close()
        return status, payload
