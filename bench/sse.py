"""A minimal asyncio client for server-sent event streams, for thousands of streams in one process.

One socket per stream, no thread: what the stream tests and ``bench.streams``
need to hold 2,000 streams from a 2-core machine. Speaks just enough HTTP/1.1
(a GET, a chunked or close-delimited response) and the SSE framing.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Optional


@dataclass
class Event:
    event: str
    data: str
    id: Optional[str]
    received: float = field(default_factory=time.monotonic)

    def json(self):
        return json.loads(self.data)


class Stream:
    """One open event stream: :attr:`status`, :attr:`headers`, then ``async for event in stream.events()``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    @classmethod
    async def open(cls, port: int, path: str, token: str = "", last_event_id: Optional[str] = None,
                   host: str = "127.0.0.1") -> "Stream":
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        stream = cls(reader, writer)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        stream.status = int(head[0].split()[1])
        for line in head[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                stream.headers[name.strip().lower()] = value.strip()
        if stream.status != 200:
            length = int(stream.headers.get("content-length", "0"))
            stream.body = await reader.readexactly(length) if length else b""
        return stream

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            while data := await self.reader.read(65536):
                yield data
            return
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return
            data = await self.reader.readexactly(size + 2)
            yield data[:-2]

    async def events(self) -> AsyncIterator[Event]:
        """Events until the server ends the stream (comments are skipped; see :attr:`comments`)."""
        self.comments = 0
        buffer = b""
        async for chunk in self._chunks():
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                name, data, event_id = "message", [], None
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        self.comments += 1
                    elif line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line.startswith("id: "):
                        event_id = line[4:]
                if data:
                    yield Event(name, "\n".join(data), event_id)

    def close(self) -> None:
        self.writer.close()
