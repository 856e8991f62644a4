"""Service tokens as configured: a name, the token (or its SHA-256), and what it may do.

``CLAW_API_TOKENS`` holds entries separated by commas (or new lines)::

    backend:3q2-Xk...:submit                          name:token:role
    monitor:sha256=9f86d08...:read                    name:sha256=<hex of the token's SHA-256>:role
    chat:Zp81...:tasks:submit:generate_ai_response+users:mint   name:token:scopes joined by +

A role (``read``, ``submit``, ``admin``) is a bundle of scopes (see
:mod:`api.scopes`, which also checks the scope names when the API starts).
The older ``token:role`` form still reads, its name made up from the role and
the first hex digits of the token's SHA-256.

Only the SHA-256 of each token is kept (giving the hash in the setting keeps
the token itself out of the environment too); the API compares the hash of
a presented token. The token's name is what the task records
(``submitted_by``), the audit log and the dashboard show.

Weak tokens stop the API at start (:func:`weakness`): the placeholders of
``.env.example`` and anything under about 128 bits of entropy. A hashed
token cannot be checked; generate tokens with ``claw-pipeline token new``.
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Optional

ROLES = ("read", "submit", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Names the engine itself submits as (``submitted_by``), or the audit log uses: a token
#: called so would see those tasks as their submitter.
RESERVED = frozenset({"scheduler", "cli", "python", "open", "anonymous"})
HASHED = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
MIN_BITS = 128
MIN_CHARS = 16
#: What the placeholders of .env.example (and of tutorials) look like.
PLACEHOLDER = re.compile(r"replace-?with|change-?me|placeholder|example|your-?token|xxxxxx", re.IGNORECASE)
GENERATE = "claw-pipeline token new"


@dataclass(frozen=True)
class ServiceToken:
    name: str
    #: SHA-256 of the token.
    digest: bytes = field(repr=False)
    #: A role, or the scopes, as configured.
    grant: tuple[str, ...]
    #: Why the token is weak (None: strong, or given hashed so that nobody can tell).
    weak: Optional[str] = field(default=None, repr=False)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def entropy_bits(secret: str) -> float:
    """A conservative estimate of a secret's entropy in bits.

    Characters are worth what the classes they use allow (lower case, upper
    case, digits, other) when the secret uses about as many distinct
    characters as a random one would; otherwise twice the distinct characters
    it holds (``aaaaaaaaaaaaaaaaaaaa`` is worth about nothing). Its length is
    the compressed length (zlib), so a repeated pattern is worth what one
    repetition is.
    """
    if not secret:
        return 0.0
    classes = (26 if re.search(r"[a-z]", secret) else 0) + (26 if re.search(r"[A-Z]", secret) else 0) \
        + (10 if re.search(r"[0-9]", secret) else 0) + (33 if re.search(r"[^A-Za-z0-9]", secret) else 0)
    distinct = len(set(secret))
    alphabet = classes if distinct >= 0.6 * min(len(secret), classes) else min(classes, 2 * distinct)
    alphabet = max(2, alphabet)
    raw = secret.encode("utf-8", "surrogateescape")
    length = min(len(secret), max(0, len(zlib.compress(raw, 9)) - 8))
    return length * math.log2(alphabet)


def weakness(secret: str) -> Optional[str]:
    """Why *secret* is too weak to guard the API, or None."""
    if PLACEHOLDER.search(secret):
        return "is a placeholder (like those in .env.example)"
    if len(secret) < MIN_CHARS:
        return f"is shorter than {MIN_CHARS} characters"
    bits = entropy_bits(secret)
    if bits < MIN_BITS:
        return f"has about {bits:.0f} bits of entropy, under {MIN_BITS}"
    return None


def parse_tokens(text: str) -> list[ServiceToken]:
    """Parse ``CLAW_API_TOKENS``; ValueError naming the entry (never the token) when one is malformed."""
    tokens: list[ServiceToken] = []
    for number, entry in enumerate(filter(None, (e.strip() for e in re.split(r"[,\n]", text))), start=1):
        tokens.append(_entry(entry, number))
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise ValueError(f"token names must be unique ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
    if len({t.digest for t in tokens}) != len(tokens):
        raise ValueError("the same token is listed twice")
    return tokens


def _entry(entry: str, number: int) -> ServiceToken:
    parts = entry.split(":", 2)
    if len(parts) == 2:  # the older token:role form
        secret, role = parts
        if role not in ROLES:
            raise ValueError(f"entry {number}: use name:token:role-or-scopes (roles: {', '.join(ROLES)})")
        name = f"{role}-{digest(secret).hex()[:8]}"
        grant = (role,)
    elif len(parts) == 3:
        name, secret, granted = parts
        if not NAME.match(name):
            raise ValueError(f"entry {number}: the name must be letters, digits, _ . - (at most 64 characters)")
        if name in RESERVED:
            raise ValueError(f"entry {number}: {name!r} is a name the engine uses itself; choose another")
        grant = tuple(filter(None, re.split(r"[+\s]+", granted)))
        if not grant:
            raise ValueError(f"entry {number} ({name}): give a role ({', '.join(ROLES)}) or scopes joined by +")
    else:
        raise ValueError(f"entry {number}: use name:token:role-or-scopes (roles: {', '.join(ROLES)})")
    hashed = HASHED.match(secret)
    if hashed:
        return ServiceToken(name, bytes.fromhex(hashed.group(1)), grant)
    if len(secret) < MIN_CHARS:
        raise ValueError(f"entry {number} ({name}): tokens must be at least {MIN_CHARS} characters")
    return ServiceToken(name, digest(secret), grant, weakness(secret))


def describe(tokens: Iterable[ServiceToken]) -> str:
    """For repr(): names and grants, never a token or its hash."""
    return ", ".join(f"{t.name}:{'+'.join(t.grant)}" for t in tokens)
