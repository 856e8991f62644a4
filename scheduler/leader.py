"""The leader lock: one scheduler replica fires, the others wait as hot standbys.

APScheduler 3 has no coordination between replicas, so the lock lives in
Redis: ``SET key token NX PX ttl`` to take it (in a script that also accepts
the lock when it is still ours), a compare-and-extend script to renew it, a
compare-and-delete script to release it. The token is random per process
(prefixed with host and pid, so operators can see who leads), which makes
renewal and release safe against a lock that expired and was taken by
someone else meanwhile.

A leader killed without releasing the lock is replaced once the TTL passes.
A leader that cannot renew must stop at once, and :meth:`LeaderLock.held`
lets every fire check that cheaply: it is true only until the moment the
lock could have expired, measured from *before* the last successful
acquire or renew was sent.
"""

from __future__ import annotations

import os
import secrets
import socket
import time

import redis

# KEYS: lock. ARGV: token, ttl_ms. Also true when the lock is still ours (a leader
# that stepped down after a Redis hiccup takes it back without waiting out the TTL).
ACQUIRE = r"""
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: lock. ARGV: token, ttl_ms.
RENEW = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock. ARGV: token.
RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float):
        self.redis = client
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self._valid_until = 0.0
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)

    def acquire(self) -> bool:
        """Take the lock if nobody else holds it."""
        sent = time.monotonic()
        if self._acquire(keys=[self.key], args=[self.token, self.ttl_ms]):
            self._valid_until = sent + self.ttl_ms / 1000
            return True
        return False

    def renew(self) -> bool:
        """Extend our lock; False (and no longer held) when it is someone else's or gone."""
        sent = time.monotonic()
        try:
            renewed = bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except redis.RedisError:
            self._valid_until = 0.0
            raise
        self._valid_until = sent + self.ttl_ms / 1000 if renewed else 0.0
        return renewed

    def release(self) -> None:
        """Give the lock up (only if it is still ours), so a standby takes over at once."""
        self._valid_until = 0.0
        self._release(keys=[self.key], args=[self.token])

    def held(self) -> bool:
        """True while our lock cannot have expired; no Redis round trip."""
        return time.monotonic() < self._valid_until
