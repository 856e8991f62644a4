"""Redis clients for every part of the engine, built from ``CLAW_REDIS_URL``.

Everything that talks to Redis (state store, results, rate limits, worker
heartbeats, the scheduler's lock, inboxes, dashboard sessions, health checks)
gets its client here, so one URL decides whether the engine talks to one
server or to the master a set of Sentinels points at:

    redis://[[user]:password@]host:6379/0             one server (also rediss://, unix://)
    redis+sentinel://[[user]:password@]host1:26379,host2:26379/mymaster/0
    rediss+sentinel://...                             the same over TLS
    redis+cluster://[[user]:password@]host1:7000,host2:7001[/0]
    rediss+cluster://...                              a Redis Cluster (database 0 only)

For a Sentinel URL the password (and user) are the Redis servers'; the
Sentinels' own password, if they have one, is the ``sentinel_password`` query
parameter. A Sentinel client asks the Sentinels for the master's address
every time it opens a connection and drops connections to a master that was
demoted, so after a failover every process reconnects to the new master by
itself: what fails meanwhile is a ``redis.ConnectionError`` like any outage
(the API answers 503, workers wait and retry).

A Cluster URL names some of the cluster's nodes; the client
(:class:`redis.cluster.RedisCluster`, its asyncio twin for ASGI code) learns
the slot map from them, sends each command to the node of its key's slot and
follows MOVED/ASK redirections while slots are resharded. The state store
then spreads its keys over 16 shards, each one hash tag (one slot), so every
script stays on one node (see :mod:`pipeline.state.keys`).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Any, Callable, TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

from pipeline.redis_url import (
    SentinelTarget, is_cluster_url, is_sentinel_url, parse_cluster_url, parse_sentinel_url,
)
from pipeline.settings import get_settings

logger = logging.getLogger("pipeline.state")
T = TypeVar("T")
#: Generous socket timeouts: a process blocked on a dead Redis must notice and
#: retry rather than hang forever, but slow scripts must not time out.
DEFAULTS: dict[str, Any] = {
    "decode_responses": True, "socket_connect_timeout": 5, "socket_timeout": 30, "health_check_interval": 30,
}
#: Asking a Sentinel is quick or the Sentinel is gone: try the next one soon.
SENTINEL_TIMEOUT_SECONDS = 1.0
#: Error replies of a Redis that is up but cannot take the command right now:
#: a master short of replicas (min-replicas-to-write), a replica cut off from
#: its master or still loading its data, a cluster moving or missing slots.
#: (redis-py prefixes the reply of a pipelined command with "Command # n (...) of pipeline caused error: ".)
UNAVAILABLE_REPLY = re.compile(r"(?:^|caused error: )(NOREPLICAS|MASTERDOWN|READONLY|LOADING|TRYAGAIN|CLUSTERDOWN)\b")


def unavailable(exc: BaseException) -> bool:
    """Whether *exc* means "Redis cannot serve this now, try again" (an outage, a failover), not a bug."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError,
                        redis.exceptions.TryAgainError, redis.exceptions.MasterDownError)):
        return True
    return isinstance(exc, redis.ResponseError) and UNAVAILABLE_REPLY.search(str(exc)) is not None


def _sentinel_arguments(target: SentinelTarget, options: dict[str, Any]) -> tuple[dict, dict]:
    """(Sentinel manager keyword arguments, master client keyword arguments)."""
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": min(SENTINEL_TIMEOUT_SECONDS, options.get("socket_connect_timeout") or SENTINEL_TIMEOUT_SECONDS),
        "socket_timeout": min(SENTINEL_TIMEOUT_SECONDS, options.get("socket_timeout") or SENTINEL_TIMEOUT_SECONDS),
    }
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    if target.ssl:
        sentinel_kwargs["ssl"] = True
    master = {**options, "db": target.db, "username": target.username, "password": target.password}
    if target.ssl:
        master["ssl"] = True
    return sentinel_kwargs, master


def make_redis(url: str, **options: Any) -> redis.Redis:
    """A new client (with its own connection pool) for *url*; *options* override :data:`DEFAULTS`."""
    options = {**DEFAULTS, **options}
    if is_cluster_url(url):
        target = parse_cluster_url(url)
        return redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in target.nodes],
            username=target.username, password=target.password, ssl=target.ssl, **options)
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel_kwargs, master = _sentinel_arguments(target, options)
    sentinel = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(target.service, **master)


def make_async_redis(url: str, **options: Any) -> redis.asyncio.Redis:
    """The asyncio client for the same URL forms (for ASGI code); the caller closes it."""
    options = {**DEFAULTS, **options}
    if is_cluster_url(url):
        target = parse_cluster_url(url)
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.nodes],
            username=target.username, password=target.password, ssl=target.ssl, **options)
    if not is_sentinel_url(url):
        return redis.asyncio.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel_kwargs, master = _sentinel_arguments(target, options)
    sentinel = redis.asyncio.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(target.service, **master)


@functools.lru_cache(maxsize=8)
def redis_for(url: str, decode_responses: bool = True) -> redis.Redis:
    """The process's shared client for *url* (one connection pool per URL and decoding)."""
    return make_redis(url, decode_responses=decode_responses)


def get_redis() -> redis.Redis:
    return redis_for(get_settings().redis_url)


def wait_for_redis(call: Callable[[], T], what: str) -> T:
    """Run *call*, retrying for as long as Redis is unreachable (or failing over).

    For workers: a task whose state cannot be recorded waits (its message
    stays unacked, nothing is lost) instead of running untracked.
    """
    delay = 0.5
    while True:
        try:
            return call()
        except redis.RedisError as exc:
            if not unavailable(exc):
                raise
            logger.warning("Redis unavailable while %s (%s); retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
