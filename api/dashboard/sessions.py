"""Dashboard sessions: a signed cookie naming the token logged in with, and CSRF tokens tied to it.

Browsers cannot send bearer tokens with links and forms, so the operator
types a service token once on the login page and gets a cookie instead. The
cookie is signed (HMAC-SHA256) with a random key kept in Redis under the
namespace: every API worker and every API host reads the same key, and
deleting it logs everybody out.

The cookie names its token by a keyed fingerprint of the token's SHA-256,
never the token itself, and the token's scopes are looked up again on every
request: removing a token from ``CLAW_API_TOKENS`` (or changing its scopes)
takes effect on the next request, not when the cookie expires. Logging out
revokes the session in Redis (until it would have expired), so a copy of the
cookie is worth nothing afterwards. Failed logins are counted per client
address; past ``CLAW_DASHBOARD_LOGIN_LIMIT`` that address is answered 429
until the window passes. User tokens (browsers') do not open the dashboard.

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

from api.auth import TokenTable
from api.caller import OPEN, Caller
from pipeline.registry import parse_rate_limit
from pipeline.settings import Settings
from pipeline.state.keys import Keys
from pipeline.tokens import digest

COOKIE_NAME = "claw_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    #: None until the visitor logs in; then the token's caller (its name and scopes).
    caller: Optional[Caller]
    #: Fingerprint of the token the visitor logged in with ("" when anonymous or auth is disabled).
    token_id: str
    nonce: str
    expires: float

    def can(self, scope: str) -> bool:
        return self.caller is not None and self.caller.has(scope)

    @property
    def name(self) -> str:
        return self.caller.name if self.caller is not None else ""


class Sessions:
    """Issues, signs and checks sessions for one deployment (its settings and Redis)."""

    def __init__(self, settings: Settings, client: Callable[[], redis.Redis]):
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.namespace, settings.shards)
        self.tokens = TokenTable(settings)
        self.login_limit = parse_rate_limit(settings.dashboard_login_limit)
        self._secret: Optional[bytes] = None
        self._callers: dict[str, Caller] = {}

    # -- the key ---------------------------------------------------------------------------

    def secret(self) -> bytes:
        """The signing key: created once per namespace (SET NX), then read by every process."""
        if self._secret is None:
            connection = self.client()
            connection.set(self.keys.dashboard_secret, secrets.token_hex(32), nx=True)
            self._secret = bytes.fromhex(connection.get(self.keys.dashboard_secret))
            self._callers = {self._fingerprint(known): caller for known, caller in self.tokens.callers.items()}
        return self._secret

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def _fingerprint(self, token_digest: bytes) -> str:
        return self._mac("token", token_digest.hex())[:32]

    # -- logging in ------------------------------------------------------------------------

    def caller_of_token(self, presented: str) -> Optional[Caller]:
        """The service token's caller (user tokens do not open the dashboard)."""
        return self.tokens.find(presented)

    def new(self, token: str = "") -> Session:
        """A session: anonymous, or logged in with *token* (a valid service token)."""
        if self.settings.auth_disabled:
            return Session(OPEN, "", secrets.token_urlsafe(16), time.time() + SESSION_SECONDS)
        caller = self.caller_of_token(token) if token else None
        token_id = self._fingerprint(digest(token)) if caller is not None else ""
        return Session(caller, token_id, secrets.token_urlsafe(16), time.time() + SESSION_SECONDS)

    def login_blocked(self, address: str) -> int:
        """Seconds until *address* may try to log in again (0: it may now)."""
        name = self.keys.dashboard_login_failures(address)
        with self.client().pipeline(transaction=False) as pipe:
            pipe.get(name)
            pipe.pttl(name)
            failures, ttl_ms = pipe.execute()
        return max(1, -(-ttl_ms // 1000)) if failures is not None and int(failures) >= self.login_limit[0] else 0

    def login_failed(self, address: str) -> None:
        name = self.keys.dashboard_login_failures(address)
        with self.client().pipeline(transaction=False) as pipe:
            pipe.incr(name)
            pipe.pexpire(name, self.login_limit[1], nx=True)
            pipe.execute()

    def revoke(self, session: Session) -> None:
        """Logging out: this session (any copy of its cookie) is refused until it would have expired."""
        remaining = int(session.expires - time.time()) + 1
        if remaining > 0:
            self.client().set(self.keys.dashboard_revoked(session.nonce), "1", ex=remaining)

    # -- the cookie ------------------------------------------------------------------------

    def encode(self, session: Session) -> str:
        body = json.dumps([session.caller is not None, session.token_id, session.nonce, int(session.expires)],
                          separators=(",", ":"))
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
            logged_in, token_id, nonce, expires = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        if expires < time.time():
            return None
        if self.settings.auth_disabled:
            return Session(OPEN, "", nonce, float(expires))
        if not logged_in:
            return Session(None, "", nonce, float(expires))
        caller = self._callers.get(token_id)  # the token's scopes now; None when it was removed
        if caller is None or self.client().exists(self.keys.dashboard_revoked(nonce)):
            return None
        return Session(caller, token_id, nonce, float(expires))

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
