"""Dashboard sessions: a signed cookie that carries the role, and CSRF tokens tied to it.

Browsers cannot send bearer tokens with links and forms, so the operator
types an API token once on the login page and gets a cookie instead. The
cookie is signed (HMAC-SHA256) with a random key kept in Redis under the
namespace: every gunicorn worker and every API host reads the same key, and
deleting it logs everybody out.

The cookie names its token by a keyed fingerprint, never the token itself,
and the role is looked up again on every request: removing a token from
``CLAW_API_TOKENS`` (or changing its role) takes effect on the next request,
not when the cookie expires.

Every visitor has a session, logged in or not, because the login form needs
a CSRF token too (otherwise a site could log a victim in as its own token).
The CSRF token is an HMAC of the session's nonce: a page can only post a
form it was served, SameSite or not. Logging in issues a new nonce, so a
session planted before login is worth nothing after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Optional

import falcon
import redis

from pipeline.settings import Settings
from pipeline.state.keys import Keys

COOKIE_NAME = "claw_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    #: None until the visitor logs in; then read, submit or admin.
    role: Optional[str]
    #: Fingerprint of the token the visitor logged in with ("" when anonymous or auth is disabled).
    token_id: str
    nonce: str
    expires: float


class Sessions:
    """Issues, signs and checks sessions for one deployment (its settings and Redis)."""

    def __init__(self, settings: Settings, client: Callable[[], redis.Redis]):
        self.settings = settings
        self.client = client
        self._secret: Optional[bytes] = None
        self._roles: dict[str, str] = {}

    # -- the key ---------------------------------------------------------------------------

    def secret(self) -> bytes:
        """The signing key: created once per namespace (SET NX), then read by every process."""
        if self._secret is None:
            name = Keys(self.settings.namespace).dashboard_secret
            connection = self.client()
            connection.set(name, secrets.token_hex(32), nx=True)
            self._secret = bytes.fromhex(connection.get(name))
            self._roles = {self.token_id(token): role for token, role in self.settings.api_tokens.items()}
        return self._secret

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def token_id(self, token: str) -> str:
        return self._mac("token", token)[:32]

    # -- logging in ------------------------------------------------------------------------

    def role_of_token(self, presented: str) -> Optional[str]:
        """The role of an API token, compared with every configured token (timing reveals nothing)."""
        found = None
        for token, role in self.settings.api_tokens.items():
            if same(presented, token):
                found = role
        return found

    def new(self, role: Optional[str] = None, token: str = "") -> Session:
        if self.settings.auth_disabled:
            role = "admin"
        token_id = self.token_id(token) if token else ""
        return Session(role, token_id, secrets.token_urlsafe(16), time.time() + SESSION_SECONDS)

    # -- the cookie ------------------------------------------------------------------------

    def encode(self, session: Session) -> str:
        body = json.dumps([session.role, session.token_id, session.nonce, int(session.expires)], separators=(",", ":"))
        payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        return f"{payload}.{self._mac('session', payload)}"

    def decode(self, value: Optional[str]) -> Optional[Session]:
        """The session in a cookie value, or None when it is missing, forged, expired or revoked."""
        if not value or "." not in value:
            return None
        payload, _, signature = value.rpartition(".")
        if not same(signature, self._mac("session", payload)):
            return None
        try:
            role, token_id, nonce, expires = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        if expires < time.time():
            return None
        if self.settings.auth_disabled:
            role = "admin"
        elif role is not None:
            role = self._roles.get(token_id)  # the token's role now; None when it was removed
            if role is None:
                return None
        return Session(role, token_id, nonce, float(expires))

    def write(self, req: falcon.Request, resp: falcon.Response, session: Session) -> None:
        resp.set_cookie(
            COOKIE_NAME, self.encode(session), max_age=int(session.expires - time.time()), path=COOKIE_PATH,
            secure=req.forwarded_scheme == "https", http_only=True, same_site="Strict",
        )

    def clear(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.unset_cookie(COOKIE_NAME, path=COOKIE_PATH, same_site="Strict")

    def read(self, req: falcon.Request) -> Optional[Session]:
        values = req.get_cookie_values(COOKIE_NAME) or []
        return next((s for s in map(self.decode, values) if s is not None), None)

    # -- CSRF ------------------------------------------------------------------------------

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: Session, presented: object) -> bool:
        return isinstance(presented, str) and same(presented, self.csrf_token(session))


def same(presented: str, expected: str) -> bool:
    """Constant-time equality of two texts, whatever characters a client sent.

    ``hmac.compare_digest`` refuses str with non-ASCII characters (TypeError),
    so both are compared as UTF-8 bytes.
    """
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))
