"""``POST /api/v1/auth/user-tokens``: a backend mints a short-lived token for one of its users' browsers.

Needs ``users:mint``; every minting is in the audit log. See :mod:`api.user_tokens`
for what the token is and how its keys rotate.
"""

from __future__ import annotations

import falcon

from api.auth import Access, caller_of
from api.errors import ApiError
from api.models import MintBody, MintedToken
from api.user_tokens import UserTokens
from api.validation import Endpoint
from pipeline.settings import Settings


class UserTokenResource:
    access = {"POST": Access("users:mint", users=False, audit=True)}
    endpoints = {"POST": Endpoint(
        "Mint a short-lived token for one user's browser", "auth", operation_id="mintUserToken", body=MintBody,
        response=MintedToken, status=201,
        errors=(503,),
        description="The token lets the browser submit generate_ai_response into its own conversations, read its own "
                    "tasks, events, conversations and inbox, and search its tenant's knowledge bases; nothing else.",
    )}

    def __init__(self, settings: Settings):
        self.tokens = UserTokens(settings)

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.tokens.enabled:
            raise ApiError(503, "User tokens not configured", "set CLAW_USER_TOKEN_KEYS to mint user tokens")
        body = await self.endpoints["POST"].parse_body(req)
        token, expires_at = self.tokens.mint(body.user_id, body.tenant_id, body.ttl_seconds, caller_of(req).name)
        req.context.audit = {"user_id": body.user_id, "tenant_id": body.tenant_id, "expires_at": expires_at}
        resp.status = falcon.HTTP_201
        resp.media = {"token": token, "expires_at": expires_at, "user_id": body.user_id, "tenant_id": body.tenant_id}
