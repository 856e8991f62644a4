"""Redis URLs: the server, Sentinel and Cluster forms of ``CLAW_REDIS_URL``.

Parsing only (no connection), so that settings can validate a URL and
:mod:`pipeline.redis_client` can build clients from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SERVER_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
#: Shard counts the state store may have (see :mod:`pipeline.state.keys`): each divides 16, so the
#: last hex digit of a random UUID spreads tasks evenly. A Cluster URL makes 16 the default.
SHARD_COUNTS = (1, 2, 4, 8, 16)


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


@dataclass(frozen=True)
class ClusterTarget:
    """What a Cluster URL names: some of the cluster's nodes (the client learns the rest from them)."""

    nodes: tuple[tuple[str, int], ...]
    username: Optional[str] = None
    password: Optional[str] = None
    ssl: bool = False


def is_sentinel_url(url: str) -> bool:
    return urlsplit(url).scheme in SENTINEL_SCHEMES


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def _addresses(hosts: str, default_port: int, what: str) -> list[tuple[str, int]]:
    addresses = []
    for item in filter(None, hosts.split(",")):
        host, sep, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not sep:
            host, port = item, str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad {what} address {item!r} (want host:port)")
        addresses.append((host, int(port)))
    if not addresses:
        raise ValueError(f"name at least one {what} (host:port, comma-separated)")
    return addresses


def _split(url: str, schemes: tuple[str, ...], what: str, default_port: int):
    """(the URL's parts, its hosts as (host, port), user, password) for a multi-host URL of *schemes*."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"a {what} URL starts with {' or '.join(s + '://' for s in schemes)}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    addresses = _addresses(hosts, default_port, "cluster node" if what == "Cluster" else what)
    user, sep, secret = userinfo.partition(":")
    return parts, addresses, unquote(user) or None, unquote(secret) if sep else None


def parse_cluster_url(url: str) -> ClusterTarget:
    """Parse ``redis+cluster://[user:pass@]h1:p1,h2:p2[/0]`` (a cluster has database 0 only).

    Raises ValueError saying what is wrong.
    """
    parts, nodes, username, password = _split(url, CLUSTER_SCHEMES, "Cluster", 6379)
    path = [p for p in parts.path.split("/") if p]
    if path not in ([], ["0"]):
        raise ValueError("a Redis Cluster has database 0 only: the path is empty or /0")
    if parts.query:
        raise ValueError("a Cluster URL takes no parameters")
    return ClusterTarget(tuple(nodes), username, password, parts.scheme == "rediss+cluster")


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse ``redis+sentinel://[user:pass@]h1:p1,h2:p2/service[/db][?sentinel_password=...]``.

    Raises ValueError saying what is wrong.
    """
    parts, sentinels, username, password = _split(url, SENTINEL_SCHEMES, "Sentinel", DEFAULT_SENTINEL_PORT)
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("the path must be /<master name>[/<db>], e.g. /mymaster/0")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"database {path[1]!r} is not a number")
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
    elif scheme in CLUSTER_SCHEMES:
        parse_cluster_url(url)
    elif scheme not in SERVER_SCHEMES:
        raise ValueError("must start with redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, "
                         "redis+cluster:// or rediss+cluster://")
