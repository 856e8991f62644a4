"""What a service token may do: scopes, and the roles that bundle them.

A service token (``CLAW_API_TOKENS``) is given a role or explicit scopes.
Each route says which scope it needs (see :mod:`api.auth`). A browser's
user token has no scopes: it may do the few things :mod:`api.auth` lets
user tokens do, always for its own user only.
"""

from __future__ import annotations

from typing import Iterable

from pipeline.errors import ConfigError
from pipeline.registry import REGISTRY

#: Every scope, and what it allows.
SCOPES = {
    "tasks:read": "every task's record, lists, events, counts, dead letters and the health snapshot, "
                  "with the declared sensitive fields masked",
    "tasks:sensitive": "the declared sensitive fields of every task (in no role: give it explicitly)",
    "tasks:submit:*": "submit any task (for any user)",
    "tasks:control": "cancel, retry and requeue tasks; see tracebacks",
    "knowledge:read": "list and search every knowledge base",
    "knowledge:write": "create and delete knowledge bases; submit the knowledge tasks",
    "conversations:read": "read any user's conversation",
    "notifications:send": "submit send_notification and send_notification_batch",
    "notifications:inbox": "read and mark any user's inbox",
    "metrics:read": "the Prometheus metrics",
    "workers:read": "the live worker list",
    "workers:control": "restart worker pools, shut workers down",
    "schedules:read": "the schedules",
    "schedules:write": "add, change, pause and delete schedules",
    "audit:read": "the audit log",
    "users:mint": "mint user tokens for browsers (POST /api/v1/auth/user-tokens)",
}
#: ``tasks:submit:<actor>`` allows one actor.
SUBMIT_PREFIX = "tasks:submit:"
ANY_ACTOR = SUBMIT_PREFIX + "*"

_READ = ("tasks:read", "knowledge:read", "metrics:read", "workers:read", "schedules:read")
_SUBMIT = (*_READ, ANY_ACTOR, "knowledge:write", "notifications:send", "conversations:read", "notifications:inbox")
_ADMIN = (*_SUBMIT, "tasks:control", "workers:control", "schedules:write", "audit:read", "users:mint")
#: Roles are bundles of scopes: read < submit < admin. ``tasks:sensitive`` is in none.
ROLES = {"read": frozenset(_READ), "submit": frozenset(_SUBMIT), "admin": frozenset(_ADMIN)}


def expand(grant: Iterable[str], token_name: str = "") -> frozenset[str]:
    """The scopes of a configured grant (roles expanded); ConfigError naming an unknown one."""
    scopes: set[str] = set()
    for item in grant:
        if item in ROLES:
            scopes |= ROLES[item]
        elif item in SCOPES:
            scopes.add(item)
        elif item.startswith(SUBMIT_PREFIX) and item[len(SUBMIT_PREFIX):] in REGISTRY:
            scopes.add(item)
        else:
            raise ConfigError(
                f"CLAW_API_TOKENS: token {token_name!r}: unknown role or scope {item!r} "
                f"(roles: {', '.join(ROLES)}; scopes: {', '.join(SCOPES)}, {SUBMIT_PREFIX}<actor>)"
            )
    return frozenset(scopes)


def may_submit(scopes: frozenset[str], actor: str) -> bool:
    """Whether *scopes* allow submitting *actor*: ``tasks:submit:*``, ``tasks:submit:<actor>`` or the actor's own scope."""
    if ANY_ACTOR in scopes or SUBMIT_PREFIX + actor in scopes:
        return True
    spec = REGISTRY.get(actor)
    return spec is not None and spec.submit_scope is not None and spec.submit_scope in scopes


def submit_scopes(actor: str) -> str:
    """The scopes that allow submitting *actor*, for error messages and the docs."""
    spec = REGISTRY.get(actor)
    own = f" or {spec.submit_scope}" if spec is not None and spec.submit_scope else ""
    return f"{SUBMIT_PREFIX}{actor}{own} (or {ANY_ACTOR})"
