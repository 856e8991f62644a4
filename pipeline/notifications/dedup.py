"""At-least-once delivery of tasks without at-least-twice sending of notifications.

RabbitMQ redelivers a message whose worker died before acking, and the retry
policy re-runs a task that raised. Either can run ``send_notification`` again
for a notification the provider already accepted. This module stops that.

Identity
    A notification is identified by its de-duplication key (the caller's
    ``dedup_key``, or else the task id, which survives redelivery and retries)
    scoped by channel and recipient: :func:`delivery_token` hashes the three into
    a 32-hex-digit token. Two submissions of the same text get two task ids,
    hence two tokens, hence two notifications; a batch gives all its children
    the batch's key, and the recipient keeps their tokens apart.

Protocol (one Redis hash ``<ns>:notify:dedup:<token>`` per token, Lua-atomic)
    1. **claim** — if the hash says ``sent``, return the stored receipt marked
       ``duplicate: true`` and send nothing. If it says ``sending`` with a live
       lease, another attempt is (or was, a moment ago) sending: raise
       :class:`TransientError` so the task is retried later, after the lease.
       Otherwise write ``sending`` with a lease (``CLAW_NOTIFY_CLAIM_LEASE_SECONDS``,
       checked against Redis' own clock) and go on.
    2. **send** — the adapter passes the token to the provider: the
       ``Idempotency-Key`` header (push, sms) and the ``Message-ID`` (email);
       the in-app inbox uses it as the item id and adds nothing if it exists.
    3. **record** — immediately after the provider's acceptance, before anything
       else (no logging or result handling first), write ``sent`` and the
       receipt (TTL ``CLAW_NOTIFY_DEDUP_TTL_SECONDS``). If Redis fails here we
       retry briefly, then still return success: the task is acked and not run
       again, so a missing marker can only matter to a caller who resubmits the
       same key (that caller gets the provider-level idempotency below).
    A send that fails *before* reaching the provider (refused connection, 4xx/5xx
    answer, SMTP rejection) deletes the claim, so the retry sends at once. A
    send whose answer was lost (:class:`OutcomeUnknown`: read timeout, dropped
    connection after the request, no reply to the end of SMTP DATA), an
    unexpected exception, or a process crash/kill keeps the claim until its
    lease ends.

What is left (the honest window)
    If the process dies, or loses its answer, *after* the provider accepted
    and *before* step 3 wrote ``sent`` (a network round trip for a lost answer,
    microseconds for a crash), no local record can say whether it was sent.
    Redeliveries within the lease are refused (no send). After the lease a
    later attempt treats the outcome as unknown and, per
    ``CLAW_NOTIFY_UNKNOWN_OUTCOME``:

    * ``resend`` (default): sends again with the **same** token, so
      - push/sms: a provider that honours ``Idempotency-Key`` drops the repeat
        (no duplicate); one that ignores it delivers a duplicate;
      - email: SMTP has no idempotency; the repeat carries the same
        ``Message-ID``, which many mail clients collapse, but the server
        will deliver it — a possible duplicate email;
      - system: never a duplicate (the inbox add is idempotent by token).
    * ``fail``: the attempt fails permanently without sending: at most once, so
      the notification may be lost instead.

    The marker lives ``CLAW_NOTIFY_DEDUP_TTL_SECONDS`` (7 days by default); a
    message redelivered after that would send again. Redis itself must be
    durable enough (AOF/replica) for markers to survive a Redis restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
import uuid
from typing import Any, Callable, Iterable

import redis as redis_lib

from pipeline.errors import PermanentError, TransientError
from pipeline.notifications.channels.base import OutcomeUnknown
from pipeline.notifications.redaction import mask_recipient, redact
from pipeline.state.keys import Keys

log = logging.getLogger("pipeline.notifications.dedup")

_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'sent' then
  return {'sent', redis.call('HGET', KEYS[1], 'receipt')}
end
local stale = '0'
if state == 'sending' then
  local lease_until = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
  if lease_until > now then
    return {'busy', tostring(lease_until - now)}
  end
  if ARGV[4] == 'fail' then
    return {'unknown', redis.call('HGET', KEYS[1], 'attempts') or '0'}
  end
  stale = '1'
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'owner', ARGV[1], 'lease_until', tostring(now + tonumber(ARGV[2])))
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'claimed', stale}
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'sending' and redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

_MARK_SENT = """
redis.call('HSET', KEYS[1], 'state', 'sent', 'receipt', ARGV[1])
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

Send = Callable[[Any, str], dict]


def delivery_token(channel: str, recipient: str, dedup_key: str) -> str:
    """The stable id of one notification to one recipient (Idempotency-Key, Message-ID, inbox id)."""
    digest = hashlib.sha256(f"{channel}\x1f{recipient}\x1f{dedup_key}".encode()).hexdigest()
    return digest[:32]


class Deduplicator:
    """Claim / send / record around one adapter call. Takes an explicit Redis client and namespace."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        namespace: str,
        *,
        ttl_seconds: int = 7 * 24 * 3600,
        lease_seconds: float = 120,
        unknown_outcome: str = "resend",
        record_attempts: int = 4,
    ):
        if unknown_outcome not in ("resend", "fail"):
            raise ValueError("unknown_outcome must be 'resend' or 'fail'")
        self.redis = redis
        self.namespace = namespace
        self.ttl_seconds = int(ttl_seconds)
        self.lease_ms = int(lease_seconds * 1000)
        self.unknown_outcome = unknown_outcome
        self.record_attempts = record_attempts
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._mark_sent = redis.register_script(_MARK_SENT)

    @classmethod
    def from_settings(cls, redis: redis_lib.Redis, namespace: str, settings: Any) -> "Deduplicator":
        return cls(
            redis,
            namespace,
            ttl_seconds=settings.notify_dedup_ttl_seconds,
            lease_seconds=settings.notify_claim_lease_seconds,
            unknown_outcome=settings.notify_unknown_outcome,
        )

    def key(self, token: str) -> str:
        return Keys(self.namespace).notification_sent(token)

    def state(self, token: str) -> dict:
        """The stored state of a token (for tests and operators)."""
        return self.redis.hgetall(self.key(token))

    def deliver(self, notification: Any, dedup_key: str, send: Send, *, secrets: Iterable[str] = ()) -> dict:
        """Send ``notification`` through ``send(notification, token)`` at most once per (channel, recipient, key).

        Returns the provider's receipt with ``duplicate`` (false on the send,
        true when an earlier attempt already sent it) and ``dedup_key``.
        """
        token = delivery_token(notification.channel, notification.recipient, dedup_key)
        key = self.key(token)
        owner = uuid.uuid4().hex
        where = f"{notification.channel} {mask_recipient(notification.recipient)} token={token}"
        try:
            status, detail = self._claim(
                keys=[key], args=[owner, self.lease_ms, self.ttl_seconds, self.unknown_outcome]
            )
        except redis_lib.RedisError as exc:
            raise TransientError(f"dedup store unavailable ({type(exc).__name__}); not sending unclaimed") from None

        if status == "sent":
            log.info("not sending again, already sent: %s", where)
            stored = json.loads(detail) if detail else {}
            return {**stored, "duplicate": True, "dedup_key": dedup_key}
        if status == "busy":
            raise TransientError(
                f"another attempt holds the send of {token} for {int(detail) / 1000:.1f}s more "
                "(in flight, or it died mid-send); retry later"
            )
        if status == "unknown":
            raise PermanentError(
                f"an earlier attempt at {token} died mid-send, so it may have been sent; not resending "
                "(CLAW_NOTIFY_UNKNOWN_OUTCOME=fail)"
            )
        if detail == "1":
            log.warning("earlier attempt died mid-send; resending with the same idempotency token: %s", where)

        try:
            result = send(notification, token)
        except OutcomeUnknown as exc:
            log.warning("outcome unknown, claim kept until its lease ends: %s: %s", where, redact(exc, secrets))
            raise
        except (TransientError, PermanentError):
            self._drop_claim(key, owner)
            raise
        except Exception as exc:
            # An adapter bug (mapping errors is the adapter's job): the provider may or may not
            # have accepted, so the claim stays; the traceback is logged redacted.
            text = redact("".join(traceback.format_exception(exc)), secrets)
            log.error("unexpected error while sending, claim kept: %s\n%s", where, text)
            raise OutcomeUnknown(f"{notification.channel}: unexpected {type(exc).__name__} while sending") from None
        # BaseException (crash, kill, time limit) propagates with the claim kept.

        # --- accepted: record before anything else ---
        self._record(key, result, where)
        log.info("sent: %s", where)
        return {**result, "duplicate": False, "dedup_key": dedup_key}

    def _record(self, key: str, result: dict, where: str) -> None:
        payload = json.dumps(result, separators=(",", ":"), default=str)
        delay = 0.05
        for attempt in range(1, self.record_attempts + 1):
            try:
                self._mark_sent(keys=[key], args=[payload, self.ttl_seconds])
                return
            except redis_lib.RedisError as exc:
                if attempt == self.record_attempts:
                    log.error(
                        "sent, but could not record it (%s): %s; a resubmission with the same key relies on "
                        "provider idempotency until the claim lease ends",
                        type(exc).__name__,
                        where,
                    )
                    return
                time.sleep(delay)
                delay *= 4

    def _drop_claim(self, key: str, owner: str) -> None:
        try:
            self._release(keys=[key], args=[owner])
        except redis_lib.RedisError as exc:
            log.warning("could not release claim %s (%s); it ends with its lease", key, type(exc).__name__)
