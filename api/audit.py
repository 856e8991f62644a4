"""The audit log over HTTP: what the middleware appends, and ``GET /api/v1/audit`` (``audit:read``).

:class:`AuditMiddleware` appends, after the response is made, every call of
a responder whose :class:`api.auth.Access` says ``audit=True`` (cancel,
retry, requeue, worker commands, schedule changes, knowledge-base deletes,
user-token minting) and every request the auth middleware refused (401, and
403 for a missing scope or a user token on a service route): who (the token's
name, ``user:<id>``, or ``anonymous``), what (method and route), the path,
the answer's status and the client's address. A resource may add details in
``req.context.audit``. Appends use the event loop's Redis client; when Redis
does not answer the request is still answered (and the miss logged).
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from api.async_redis import LoopRedis
from api.auth import Access, access_of
from api.blocking import run_blocking
from api.models import AuditPage, AuditQuery
from api.resources import EngineProvider
from api.validation import Endpoint

logger = logging.getLogger("api.audit")


class AuditMiddleware:
    def __init__(self, engine: EngineProvider):
        self.engine = engine
        self.redis = LoopRedis()

    async def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool) -> None:
        refused = req.context.get("auth_refused")
        access = access_of(resource, req.method)
        if refused is None and not (access is not None and access.audit):
            return
        caller = req.context.get("caller")
        detail = dict(req.context.get("audit") or {})
        if refused is not None:
            detail["refused"] = refused
        try:
            engine = self.engine()
            await engine.store.audit_async(
                self.redis.client(engine.settings.redis_url), caller.name if caller is not None else "anonymous",
                f"{req.method} {req.uri_template}", target=req.path, outcome=str(resp.status_code),
                address=req.remote_addr or "", detail=detail,
            )
        except Exception as exc:  # never fail the answer for its log entry
            logger.warning("audit entry for %s %s not written: %s", req.method, req.path, exc)


class AuditResource:
    access = {"GET": Access("audit:read", users=False)}
    endpoints = {"GET": Endpoint("The audit log, newest first: admin actions and refused authentications", "audit",
                                 operation_id="listAuditEntries", query=AuditQuery, response=AuditPage)}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = self.endpoints["GET"].parse_query(req)
        entries, next_cursor = await run_blocking(self.engine().store.audit_page, query.limit, query.cursor, query.action)
        resp.media = {"entries": entries, "next_cursor": next_cursor}
