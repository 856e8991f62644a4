"""Who may call what: service tokens with scopes, user tokens for one user, and each route's :class:`Access`.

Each resource says, for each of its responders, what it needs in an
``access`` attribute, e.g. ``access = {"GET": Access("tasks:read", users=True)}``:

* ``scope``: the scope a service token needs (see :mod:`api.scopes`); None:
  any valid token;
* ``users``: whether browsers' user tokens may call it at all. There is no
  default: every route decides. A route that lets them in shows a user
  token its own user's records only, and answers 404 for anyone else's
  (no existence leak); a route that does not answers 403;
* ``audit``: the call goes to the audit log (admin actions).

:data:`PUBLIC` routes need no token. :func:`check_access` refuses, when the
app is built, a resource with a responder that has no Access, so no route can
be served without a decision about who may call it.

Service tokens come from ``CLAW_API_TOKENS`` (:mod:`pipeline.tokens`); with
none configured the API refuses to start, unless ``CLAW_AUTH_DISABLED=true``
(development only), as it does when a token is weak. User tokens are
verified by :mod:`api.user_tokens`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Optional

import falcon

from api.caller import OPEN, Caller
from api.errors import ApiError
from api.scopes import expand
from api.user_tokens import InvalidUserToken, UserTokens, looks_like_user_token
from pipeline.errors import ConfigError
from pipeline.settings import Settings
from pipeline.tokens import GENERATE, digest, weakness


@dataclass(frozen=True)
class Access:
    #: The scope a service token needs; None: any valid token.
    scope: Optional[str]
    #: Whether user tokens may call it (it then shows them their own user's records only).
    users: bool
    #: Whether each call is appended to the audit log.
    audit: bool = False
    #: No token needed.
    public: bool = False


PUBLIC = Access(None, users=True, public=True)


def access_of(resource: Any, method: str) -> Optional[Access]:
    return getattr(resource, "access", {}).get(method) if resource is not None else None


def responders(resource: Any) -> list[str]:
    """The HTTP methods *resource* answers (Falcon's ``on_<method>`` convention)."""
    return sorted(
        name[3:].upper() for name in dir(resource) if name.startswith("on_") and callable(getattr(resource, name))
    )


def check_access(path: str, resource: Any) -> None:
    """Refuse to mount a resource that answers a method without saying who may call it."""
    for method in responders(resource):
        if not isinstance(access_of(resource, method), Access):
            raise ConfigError(f"route {method} {path}: {type(resource).__name__}.access has no Access for {method}")


class TokenTable:
    """The configured service tokens, looked up by the SHA-256 of what a client presents."""

    def __init__(self, settings: Settings):
        self.callers: dict[bytes, Caller] = {
            token.digest: Caller(token.name, expand(token.grant, token.name)) for token in settings.api_tokens
        }

    def find(self, presented: str) -> Optional[Caller]:
        found = None
        presented_digest = digest(presented)
        for known, caller in self.callers.items():  # compare with every token: timing reveals nothing
            if hmac.compare_digest(presented_digest, known):
                found = caller
        return found


def check_auth_config(settings: Settings) -> None:
    """Refuse to serve without tokens (unless auth is disabled), with a weak token, or an unknown scope."""
    if not settings.api_tokens and not settings.auth_disabled:
        raise ConfigError(
            "CLAW_API_TOKENS: no API tokens configured; set name:token:role entries "
            "(roles: read, submit, admin), or CLAW_AUTH_DISABLED=true for development only"
        )
    for token in settings.api_tokens:
        if token.weak:
            raise ConfigError(f"CLAW_API_TOKENS: token {token.name!r} {token.weak}; generate one with `{GENERATE}`")
        expand(token.grant, token.name)
    for key_id, secret in settings.user_token_keys:
        weak = weakness(secret.get_secret_value())
        if weak:
            raise ConfigError(f"CLAW_USER_TOKEN_KEYS: key {key_id!r} {weak}; generate one with `{GENERATE}`")


def refuse(req: falcon.Request, reason: str) -> ApiError:
    """A 401 (and what the audit log records about it)."""
    req.context.auth_refused = reason
    return ApiError(401, "Unauthorized", f"{reason}; send a valid token as 'Authorization: Bearer <token>'",
                    headers={"WWW-Authenticate": "Bearer"})


class AuthMiddleware:
    """Identifies the caller and checks the Access of the matched responder.

    Runs in ``process_resource`` because the Access belongs to the resource;
    unknown routes and methods without a responder fall through to Falcon's
    404/405 (they reveal nothing).
    """

    def __init__(self, settings: Settings):
        self.tokens = TokenTable(settings)
        self.user_tokens = UserTokens(settings)
        self.disabled = settings.auth_disabled

    async def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        access = access_of(resource, req.method)
        if access is None or access.public:
            return
        caller = OPEN if self.disabled else self.identify(req)
        req.context.caller = caller
        if caller.is_user and not access.users:
            req.context.auth_refused = "a user token on a route for service tokens"
            raise ApiError(403, "Forbidden", f"{req.method} {req.uri_template} is not open to user tokens")
        if not caller.is_user and access.scope is not None and not caller.has(access.scope):
            req.context.auth_refused = f"missing scope {access.scope}"
            raise ApiError(403, "Forbidden", f"{req.method} {req.uri_template} needs the {access.scope!r} scope; "
                                             f"token {caller.name!r} does not have it")

    def identify(self, req: falcon.Request) -> Caller:
        scheme, _, token = (req.get_header("Authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise refuse(req, "no bearer token")
        caller = self.tokens.find(token)
        if caller is not None:
            return caller
        if self.user_tokens.enabled and looks_like_user_token(token):
            try:
                return self.user_tokens.verify(token)
            except InvalidUserToken as exc:
                raise refuse(req, str(exc)) from None
        raise refuse(req, "unknown token")


def caller_of(req: falcon.Request) -> Caller:
    """The caller the middleware identified (routes without a token have none)."""
    return req.context.caller
