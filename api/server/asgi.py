"""What only the connection level knows: the access log and the client-gone signal.

:class:`ServedApp` wraps the Falcon app with two things a Falcon middleware
cannot see:

* the access log: one line per request, written when the response has been
  sent (an event stream is logged when it ends), without any header, so the
  bearer token never reaches the log::

      127.0.0.1 "GET /api/v1/tasks/stats HTTP/1.1" 200 1043 2ms pid=<8751>

* ``scope["claw.client_gone"]``: a future resolved when the client
  disconnects, so a waiting event stream ends at once instead of at its next
  keep-alive (Falcon only looks after each event it sends).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable

from api.request_ids import SCOPE_KEY as REQUEST_ID_KEY

access_log = logging.getLogger("api.access")


class ServedApp:
    def __init__(self, app: Callable):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gone = asyncio.get_running_loop().create_future()
        scope["claw.client_gone"] = gone
        started = time.perf_counter()
        status, sent = 0, 0

        async def watched_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.disconnect" and not gone.done():
                gone.set_result(True)
            return message

        async def counted_send(message: dict[str, Any]) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, watched_receive, counted_send)
        finally:
            if not gone.done():
                gone.set_result(False)
            if access_log.isEnabledFor(logging.INFO):
                _log(scope, status, sent, time.perf_counter() - started)


def _log(scope: dict, status: int, sent: int, seconds: float) -> None:
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    client = scope.get("client")
    access_log.info('%s "%s %s HTTP/%s" %s %s %dms pid=<%d>', client[0] if client else "-", scope["method"],
                    target.decode("latin-1"), scope["http_version"], status or "-", sent, seconds * 1000, os.getpid(),
                    extra={"request_id": scope.get(REQUEST_ID_KEY)})
