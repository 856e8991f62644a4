"""``X-Request-ID``: every answer names the request, and so do the log lines and tasks it caused.

The id is the client's ``X-Request-ID`` when it is sane (printable, no
spaces, at most 128 characters), else a new one. It is bound to the log
context for the request (:mod:`pipeline.observability.logs`), so every line
logged while answering carries it; a task submitted by the request carries
it in its message and record (``request_id``), so the worker's lines for that
task carry it too. The connection-level access log reads it from the scope.
"""

from __future__ import annotations

import falcon

from pipeline.observability import logs

HEADER = "X-Request-ID"
#: Where the access log (api.server.asgi) finds the id.
SCOPE_KEY = "claw.request_id"


class RequestIdMiddleware:
    async def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        rid = logs.accept_request_id(req.get_header(HEADER))
        req.context.request_id = rid
        req.scope[SCOPE_KEY] = rid
        logs.bind(request_id=rid)  # this request's task only: each request runs in a task of its own

    async def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        rid = getattr(req.context, "request_id", None)
        if rid:
            resp.set_header(HEADER, rid)
