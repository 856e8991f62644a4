"""Redis URLs: the server form and the Sentinel form of ``CLAW_REDIS_URL``.

Parsing only (no connection), so that settings can validate a URL and
:mod:`pipeline.redis_client` can build clients from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SERVER_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelTarget:
    """What a Sentinel URL names: where the Sentinels are and which master to ask them for."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: Optional[str] = None
    password: Optional[str] = None
    sentinel_password: Optional[str] = None
    ssl: bool = False


def is_sentinel_url(url: str) -> bool:
    return urlsplit(url).scheme in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse ``redis+sentinel://[user:pass@]h1:p1,h2:p2/service[/db][?sentinel_password=...]``.

    Raises ValueError saying what is wrong.
    """
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"a Sentinel URL starts with {' or '.join(s + '://' for s in SENTINEL_SCHEMES)}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = []
    for item in filter(None, hosts.split(",")):
        host, sep, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not sep:
            host, port = item, str(DEFAULT_SENTINEL_PORT)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad Sentinel address {item!r} (want host:port)")
        sentinels.append((host, int(port)))
    if not sentinels:
        raise ValueError("name at least one Sentinel (host:port, comma-separated)")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("the path must be /<master name>[/<db>], e.g. /mymaster/0")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"database {path[1]!r} is not a number")
    username = password = None
    if userinfo:
        user, sep, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    query = parse_qs(parts.query)
    unknown = set(query) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} (only sentinel_password is read)")
    sentinel_password = query.get("sentinel_password", [None])[0]
    return SentinelTarget(tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0, username, password,
                          sentinel_password, parts.scheme == "rediss+sentinel")


def check_url(url: str) -> None:
    """Raise ValueError when *url* is no Redis URL this module can connect to."""
    scheme = urlsplit(url).scheme
    if scheme in SENTINEL_SCHEMES:
        parse_sentinel_url(url)
    elif scheme not in SERVER_SCHEMES:
        raise ValueError("must start with redis://, rediss://, unix://, redis+sentinel:// or rediss+sentinel://")
