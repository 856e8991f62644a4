"""Who is calling: a service token (a name and its scopes) or a user token (one user), and what each sees.

:class:`Caller` is set on ``req.context.caller`` by :class:`api.auth.AuthMiddleware`.
Resources ask it whether a record is the caller's (:meth:`Caller.owns`), and
show records through :meth:`Caller.view`: a user's data (the fields its task
declares sensitive, see :mod:`pipeline.sensitive`) is shown to its owner,
to the token that submitted it and to tokens with ``tasks:sensitive``;
tracebacks to tokens with ``tasks:control``; to everyone else masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from api.scopes import ROLES, SUBMIT_PREFIX, may_submit
from pipeline.registry import REGISTRY
from pipeline.sensitive import mask_record

#: What a caller sees of a user's data it may not see.
EVERYTHING = frozenset(ROLES["admin"] | {"tasks:sensitive"})


@dataclass(frozen=True)
class Caller:
    #: The token's name (service tokens), ``user:<user_id>`` (user tokens), ``open`` (auth disabled).
    name: str
    scopes: frozenset[str] = frozenset()
    #: Set for user tokens only: the one user whose data the caller may see.
    user_id: Optional[str] = None
    tenant_id: Optional[str] = None
    #: The service token that minted a user token.
    minted_by: Optional[str] = None

    @property
    def is_user(self) -> bool:
        return self.user_id is not None

    def has(self, scope: str) -> bool:
        """Whether a service token holds *scope* (``tasks:submit:<actor>`` also through the actor's own scope)."""
        if self.is_user:
            return False
        if scope.startswith(SUBMIT_PREFIX):
            return may_submit(self.scopes, scope[len(SUBMIT_PREFIX):])
        return scope in self.scopes

    def owns(self, record: Optional[dict]) -> bool:
        """Whether *record* (a task record, or anything with ``user_id``) is this user token's user's."""
        return record is not None and self.is_user and record.get("user_id") == self.user_id

    def may_read(self, record: Optional[dict]) -> bool:
        """A task record this caller may look at: its own, for a user token; any, for a service token."""
        return record is not None and (not self.is_user or self.owns(record))

    def sees_sensitive(self, record: dict) -> bool:
        if self.is_user:
            return self.owns(record)
        return "tasks:sensitive" in self.scopes or (record.get("submitted_by") == self.name and self.name != "")

    def view(self, record: Optional[dict]) -> Optional[dict]:
        """*record* as this caller may see it."""
        if record is None:
            return None
        shown = record
        if not self.sees_sensitive(record):
            spec = REGISTRY.get(record.get("actor", ""))
            if spec is not None:
                shown = mask_record(record, spec.sensitive_arguments, spec.sensitive_output)
        error = shown.get("error")
        if isinstance(error, dict) and "traceback" in error and not self.has("tasks:control"):
            shown = {**shown, "error": {k: v for k, v in error.items() if k != "traceback"}}
        return shown


#: Everyone, when CLAW_AUTH_DISABLED=true (development only).
OPEN = Caller("open", EVERYTHING)
