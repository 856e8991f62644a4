"""The in-app inbox over HTTP.

* ``GET  /api/v1/notifications/{user_id}?limit=20&cursor=<next_cursor>&unread_only=false`` — unread
  first (newest first), then read; ``next_cursor`` is null on the last page (``offset``/``next_offset``
  are the same under their earlier names).
* ``POST /api/v1/notifications/{user_id}/read`` with ``{"ids": ["..."]}`` or ``{"all": true}`` —
  returns how many were marked and how many stay unread.

A user token reads and marks its own user's inbox only (another user's is a
404); a service token needs ``notifications:inbox``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import falcon
import redis as redis_lib

from api.auth import Access, caller_of
from api.blocking import run_blocking
from api.errors import ApiError
from api.models import InboxPage, InboxQuery, MarkReadBody, MarkReadOutcome
from api.validation import Endpoint
from pipeline.notifications.channels.system import Inbox
from pipeline.notifications.config import get_notification_settings
from pipeline.notifications.models import USER_ID_RE
from pipeline.redis_client import get_redis
from pipeline.settings import get_settings
from pipeline.state.keys import shared_namespace


def _check_user(req: falcon.Request, user_id: str) -> None:
    if not USER_ID_RE.match(user_id or ""):
        raise ApiError(400, "Invalid user_id", "user_id: must be letters, digits, _ . @ : - (at most 128 characters)",
                       fields={"user_id": "must be letters, digits, _ . @ : - (at most 128 characters)"})
    caller = caller_of(req)
    if caller.is_user and caller.user_id != user_id:
        raise ApiError(404, "Not Found", f"no inbox {user_id!r} for this user")


class _InboxResource:
    access = {"GET": Access("notifications:inbox", users=True), "POST": Access("notifications:inbox", users=True)}

    def __init__(self, inbox: Optional[Inbox] = None):
        self._inbox_obj = inbox

    def _inbox(self) -> Inbox:
        if self._inbox_obj is None:
            self._inbox_obj = Inbox.from_settings(get_redis(), shared_namespace(get_settings()),
                                                get_notification_settings())
        return self._inbox_obj

    async def call(self, method: Callable[[Inbox], Any]) -> Any:
        """``method(inbox)`` in the blocking pool; an unreachable Redis is a 503."""
        try:
            return await run_blocking(lambda: method(self._inbox()))
        except redis_lib.RedisError as exc:
            raise ApiError(503, "Inbox unavailable", f"the inbox store did not answer ({type(exc).__name__})",
                           headers={"Retry-After": "5"}) from None


class NotificationListResource(_InboxResource):
    """``GET /api/v1/notifications/{user_id}``: one page of the user's inbox, unread first."""

    endpoints = {"GET": Endpoint("One page of a user's in-app inbox, unread first", "notifications",
                                 operation_id="listNotifications", query=InboxQuery, response=InboxPage,
                                 errors=(404, 503))}

    async def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        _check_user(req, user_id)
        query = self.endpoints["GET"].parse_query(req)
        page = await self.call(
            lambda inbox: inbox.list(user_id, offset=query.start, limit=query.limit, unread_only=query.unread_only))
        next_offset = page["next_offset"]
        resp.media = {"user_id": user_id, **page, "next_cursor": None if next_offset is None else str(next_offset)}


class NotificationReadResource(_InboxResource):
    """``POST /api/v1/notifications/{user_id}/read``: mark some or all items read."""

    endpoints = {"POST": Endpoint("Mark some (ids) or all of a user's notifications read", "notifications",
                                  operation_id="markNotificationsRead", body=MarkReadBody, response=MarkReadOutcome,
                                  errors=(404, 503))}

    async def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        _check_user(req, user_id)
        body = await self.endpoints["POST"].parse_body(req)
        outcome = await self.call(lambda inbox: inbox.mark_read(user_id, body.ids, all=bool(body.all)))
        resp.media = {"user_id": user_id, **outcome}
