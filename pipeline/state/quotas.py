"""Submission quotas: how many tasks of an actor one user may submit per window.

Browsers hold user tokens; a user token may submit only actors whose policy
sets ``user_quota`` (e.g. ``generate_ai_response``: ``CLAW_USER_AI_QUOTA``),
and each user at most that many per window, counted here when the API
accepts a submission: the one beyond is answered 429 with Retry-After, before
anything is recorded or published. A sliding window (a sorted set of the
user's recent submissions, trimmed as it is read), one script per submission.
"""

from __future__ import annotations

import os


# KEYS: the user's quota set. ARGV: limit, window_ms, member.
# Returns 0 when the submission is counted, else the milliseconds until it would be.
TAKE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


class SubmitQuotas:
    """A part of :class:`pipeline.state.store.StateStore`."""

    def _register_quota_scripts(self) -> None:
        self._take_quota = self._register(TAKE)

    def take_submit_quota(self, actor: str, user_id: str, limit: int, window_ms: int) -> int:
        """Count one submission of *actor* by *user_id*: 0, or the milliseconds to wait when over *limit*."""
        return int(self._take_quota(keys=[self.keys.submit_quota(actor, user_id)],
                                    args=[limit, window_ms, os.urandom(8).hex()]))
