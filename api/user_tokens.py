"""User tokens: short-lived signed tokens a backend mints for one of its users, for that user's browser.

The browser never holds a service token. The product's backend (which has
one, with the ``users:mint`` scope) asks ``POST /api/v1/auth/user-tokens``
for a token for the user who is logged in there, and hands it to the page.
A user token is a JWT (HS256) with the claims ``user_id``, ``tenant_id``
(optional), ``iat``, ``exp`` and ``iss`` (this deployment's namespace), and
``kid`` in its header naming the key that signed it.

Keys come from ``CLAW_USER_TOKEN_KEYS`` (``key_id:secret``, comma-separated):
the first signs, every one verifies, so a key is rotated by putting a new one
first and removing the old one once the tokens it signed have expired (at
most ``CLAW_USER_TOKEN_MAX_TTL_SECONDS``). A token cannot be revoked before
it expires: keep lifetimes short (15 minutes unless asked otherwise).
"""

from __future__ import annotations

import time
from typing import Optional

import jwt

from api.caller import Caller
from pipeline.owners import Owner
from pipeline.settings import Settings

ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 900
#: Tokens a process remembers as verified (until they expire): a browser polls with the same token.
CACHE_SIZE = 10_000


class InvalidUserToken(Exception):
    """Why a presented user token is refused (the message names no secret)."""


def looks_like_user_token(token: str) -> bool:
    """A JWT: three base64url parts, the first a JSON object (``eyJ``)."""
    return token.startswith("eyJ") and token.count(".") == 2


class UserTokens:
    def __init__(self, settings: Settings):
        self.keys = {key_id: secret.get_secret_value().encode() for key_id, secret in settings.user_token_keys}
        self.signing = settings.user_token_keys[0][0] if settings.user_token_keys else None
        self.issuer = f"claw-pipeline/{settings.namespace}"
        self.max_ttl = settings.user_token_max_ttl_seconds
        self._verified: dict[str, tuple[Caller, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.signing is not None

    def mint(self, user_id: str, tenant_id: Optional[str], ttl_seconds: Optional[int], minted_by: str) -> tuple[str, float]:
        """A token for *user_id* and when it expires (epoch seconds). The ids must be valid owner ids."""
        Owner(user_id, tenant_id).check()
        now = int(time.time())
        expires = now + min(ttl_seconds or DEFAULT_TTL_SECONDS, self.max_ttl)
        claims = {"user_id": user_id, "iat": now, "exp": expires, "iss": self.issuer, "mby": minted_by}
        if tenant_id is not None:
            claims["tenant_id"] = tenant_id
        token = jwt.encode(claims, self.keys[self.signing], algorithm=ALGORITHM, headers={"kid": self.signing})
        return token, float(expires)

    def verify(self, token: str) -> Caller:
        """The caller a user token stands for; InvalidUserToken when it is expired, tampered with or not ours."""
        remembered = self._verified.get(token)
        if remembered is not None and remembered[1] > time.time():
            return remembered[0]
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise InvalidUserToken("not a valid user token") from None
        key = self.keys.get(key_id) if isinstance(key_id, str) else None
        if key is None:
            raise InvalidUserToken("user token signed with an unknown key")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=self.issuer,
                                options={"require": ["exp", "iat", "iss", "user_id"]})
        except jwt.ExpiredSignatureError:
            raise InvalidUserToken("user token expired") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidUserToken(f"user token refused ({type(exc).__name__})") from None
        try:
            owner = Owner(claims["user_id"], claims.get("tenant_id")).check()
        except ValueError:
            raise InvalidUserToken("user token names an invalid user") from None
        caller = Caller(f"user:{owner.user_id}", user_id=owner.user_id, tenant_id=owner.tenant_id,
                        minted_by=claims.get("mby"))
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (caller, float(claims["exp"]))
        return caller
