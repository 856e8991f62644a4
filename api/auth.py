"""Bearer tokens with three roles: read < submit < admin.

Each resource says which role each of its methods needs in a ``roles`` class
attribute, e.g. ``roles = {"GET": "read", "POST": "submit"}`` (or ``PUBLIC``).
:func:`check_roles` refuses, when the app is built, a resource with a
responder that has no role, so a new route can never be served without auth.

Tokens come from ``CLAW_API_TOKENS`` (``token:role`` pairs). With none
configured the API refuses to start, unless ``CLAW_AUTH_DISABLED=true``
(development only): an API that silently ran open would be worse than one
that does not run.
"""

from __future__ import annotations

import hmac
from typing import Any, Optional

import falcon

from api.errors import ApiError
from pipeline.errors import ConfigError
from pipeline.settings import ROLES, Settings

#: The role value of methods anyone may call (health checks, the docs page).
PUBLIC = "public"
RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}


def check_auth_config(settings: Settings) -> None:
    if not settings.api_tokens and not settings.auth_disabled:
        raise ConfigError(
            "CLAW_API_TOKENS: no API tokens configured; set token:role pairs "
            "(roles: read, submit, admin), or CLAW_AUTH_DISABLED=true for development only"
        )


def responders(resource: Any) -> list[str]:
    """The HTTP methods *resource* answers (Falcon's ``on_<method>`` convention)."""
    return sorted(
        name[3:].upper() for name in dir(resource) if name.startswith("on_") and callable(getattr(resource, name))
    )


def check_roles(path: str, resource: Any) -> None:
    """Refuse to mount a resource that answers a method without saying who may call it."""
    roles = getattr(resource, "roles", {})
    for method in responders(resource):
        role = roles.get(method)
        if role != PUBLIC and role not in RANK:
            raise ConfigError(f"route {method} {path}: {type(resource).__name__}.roles has no valid role for {method}")


class AuthMiddleware:
    """Checks the bearer token against the role the matched responder needs.

    Runs in ``process_resource`` because the needed role belongs to the
    resource; unknown routes and methods without a responder fall through to
    Falcon's 404/405 (they reveal nothing).
    """

    def __init__(self, settings: Settings):
        self.tokens = [(token.encode(), role) for token, role in settings.api_tokens.items()]
        self.disabled = settings.auth_disabled

    async def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        needed = getattr(resource, "roles", {}).get(req.method) if resource is not None else None
        if needed is None or needed == PUBLIC:
            return
        if self.disabled:
            req.context.role = "admin"
            return
        role = self._role_of(req)
        if role is None:
            raise ApiError(
                401, "Unauthorized", "send a valid token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if RANK[role] < RANK[needed]:
            raise ApiError(403, "Forbidden",
                           f"{req.method} {req.uri_template} needs the {needed!r} role; this token has {role!r}")
        req.context.role = role

    def _role_of(self, req: falcon.Request) -> Optional[str]:
        scheme, _, token = (req.get_header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = token.strip().encode()
        found = None
        for known, role in self.tokens:  # compare with every token: timing reveals nothing
            if hmac.compare_digest(presented, known):
                found = role
        return found
