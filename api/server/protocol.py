"""uvicorn's HTTP protocol with the front-door limits it lacks.

uvicorn (0.54) times out only idle kept-alive connections: a client that
connects and sends nothing, or half a request line, or headers one byte at a
time, or a body that never ends, holds its connection (a file descriptor and
a parser) for as long as it likes; a few hundred such clients exhaust a
process. This protocol adds, per connection:

* a header time-out (``CLAW_API_HEADER_TIMEOUT_SECONDS``): from the
  connection's start, or a request's first byte, to the end of its headers;
* a body time-out (``CLAW_API_BODY_TIMEOUT_SECONDS``): from the end of the
  headers to the end of the body;
* a keep-alive limit (``CLAW_API_KEEPALIVE_MAX_REQUESTS``): the response to
  the last allowed request says ``Connection: close``.

A request that runs out of time gets ``408 Request Timeout`` (when nothing of
a response was sent yet) and its connection is closed. Timers are armed and
disarmed with ``loop.call_later``: no task or thread per connection.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Optional

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.streams.hub import end_all_streams
from pipeline.settings import get_settings


@functools.lru_cache(maxsize=1)
def _timeout_response() -> bytes:
    body = json.dumps({"error": {"status": 408, "title": "Request Timeout",
                                 "description": "the request did not arrive in time"}}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.api_header_timeout_seconds
        self.body_timeout = settings.api_body_timeout_seconds
        self.max_requests = settings.api_keepalive_max_requests
        self.requests_served = 0
        self.deadline: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)  # the first request's head, whether or not a byte comes

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.deadline is None:  # a further request on a kept-alive connection
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self.requests_served += 1
        if self.cycle is not None and self.requests_served >= self.max_requests:
            self.cycle.keep_alive = False
        if self._has_body():
            self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def shutdown(self) -> None:
        # The server is stopping: open event streams end now (their clients reconnect
        # to another process) instead of holding the shutdown until they time out.
        end_all_streams()
        super().shutdown()

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.strip() not in (b"0", b"")
            if name == b"transfer-encoding":
                return True
        return False

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _timed_out(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            cycle.keep_alive = False  # a response is on its way: close after it
            return
        self.transport.write(_timeout_response())
        self.transport.close()
