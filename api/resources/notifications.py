"""The in-app inbox over HTTP.

* ``GET  /api/v1/notifications/{user_id}?offset=0&limit=20&unread_only=false`` — unread first
  (newest first), then read; ``next_offset`` is null on the last page.
* ``POST /api/v1/notifications/{user_id}/read`` with ``{"ids": ["..."]}`` or ``{"all": true}`` —
  returns how many were marked and how many stay unread.

Mount (the app owns routing and auth; ``roles`` tells the auth middleware the role per method)::

    app.add_route("/api/v1/notifications/{user_id}", NotificationListResource())
    app.add_route("/api/v1/notifications/{user_id}/read", NotificationReadResource())
"""

from __future__ import annotations

from typing import Optional

import falcon
import redis as redis_lib
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.validation import Endpoint

from pipeline.notifications.channels.system import MAX_PAGE, Inbox
from pipeline.notifications.config import get_notification_settings
from pipeline.notifications.models import USER_ID_RE
from pipeline.redis_client import get_redis
from pipeline.settings import get_settings

ITEM_ID_MAX = 128
MAX_IDS = 1000


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(20, ge=1, le=MAX_PAGE)
    unread_only: bool = False


class MarkReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Optional[list[str]] = Field(None, min_length=1, max_length=MAX_IDS)
    all: Optional[bool] = None

    @field_validator("ids")
    @classmethod
    def _ids(cls, value: Optional[list[str]]) -> Optional[list[str]]:
        for item in value or []:
            if not item or len(item) > ITEM_ID_MAX:
                raise ValueError(f"each id must be 1-{ITEM_ID_MAX} characters")
        return value

    @model_validator(mode="after")
    def _one(self) -> "MarkReadBody":
        if self.all is not None and not self.all:
            raise ValueError("all: must be true (or leave it out and give ids)")
        if (self.ids is None) == (self.all is None):
            raise ValueError("ids: give either ids (a non-empty list) or all: true")
        return self


def _check_user(user_id: str) -> None:
    if not USER_ID_RE.match(user_id or ""):
        raise falcon.HTTPBadRequest(
            title="Invalid user_id",
            description="user_id: must be letters, digits, _ . @ : - (at most 128 characters)",
        )


class _InboxResource:
    roles = {"GET": "read", "POST": "submit"}

    def __init__(self, inbox: Optional[Inbox] = None):
        self._inbox_obj = inbox

    def _inbox(self) -> Inbox:
        if self._inbox_obj is None:
            self._inbox_obj = Inbox.from_settings(get_redis(), get_settings().namespace, get_notification_settings())
        return self._inbox_obj

    @staticmethod
    def _unavailable(exc: Exception) -> falcon.HTTPServiceUnavailable:
        return falcon.HTTPServiceUnavailable(
            title="Inbox unavailable", description=f"the inbox store did not answer ({type(exc).__name__})"
        )


class NotificationListResource(_InboxResource):
    """``GET /api/v1/notifications/{user_id}``: one page of the user's inbox, unread first."""

    endpoints = {"GET": Endpoint("One page of a user's in-app inbox, unread first", "notifications",
                                 query=ListQuery, errors=(503,))}

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        _check_user(user_id)
        query = self.endpoints["GET"].parse_query(req)
        try:
            page = self._inbox().list(user_id, offset=query.offset, limit=query.limit, unread_only=query.unread_only)
        except redis_lib.RedisError as exc:
            raise self._unavailable(exc) from None
        resp.media = {"user_id": user_id, **page}


class NotificationReadResource(_InboxResource):
    """``POST /api/v1/notifications/{user_id}/read``: mark some or all items read."""

    endpoints = {"POST": Endpoint("Mark some (ids) or all of a user's notifications read", "notifications",
                                  body=MarkReadBody, errors=(503,))}

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        _check_user(user_id)
        body = self.endpoints["POST"].parse_body(req)
        try:
            outcome = self._inbox().mark_read(user_id, body.ids, all=bool(body.all))
        except redis_lib.RedisError as exc:
            raise self._unavailable(exc) from None
        resp.media = {"user_id": user_id, **outcome}
