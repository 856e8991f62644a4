"""The audit log: newest first, paged, filtered by the start of the action (``audit:read``)."""

from __future__ import annotations

from urllib.parse import urlencode

import falcon

from api.dashboard.web import Resource, responder
from pipeline.state.audit import is_stream_id

PAGE_SIZE = 100


class AuditPage(Resource):
    @responder("audit:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        action = (req.get_param("action") or "").strip()[:200] or None
        cursor = req.get_param("cursor") or None
        if cursor is not None and not is_stream_id(cursor):
            cursor = None
        entries, next_cursor = self.dashboard.engine().store.audit_page(PAGE_SIZE, cursor, action)
        more = urlencode({"cursor": next_cursor, **({"action": action} if action else {})}) if next_cursor else ""
        self.dashboard.render(req, resp, session, "audit.html", section="audit", entries=entries, action=action or "",
                              more=more)
