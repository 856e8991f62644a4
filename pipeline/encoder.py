"""The wire format: JSON, gzip-compressed above a size threshold.

Every process installs the same encoder through :func:`pipeline.broker.make_broker`,
so a producer and a consumer always agree. Compressed bodies are recognised by
gzip's magic bytes (JSON never starts with them), so small messages stay plain
JSON that any AMQP tool can read.

Decompression is bounded (``CLAW_MAX_MESSAGE_BYTES``): a body of a few
kilobytes can inflate to gigabytes (a "gzip bomb"), and whoever can publish
to a queue could otherwise make every worker that takes it, and the
dead-letter requeue, run out of memory. Such a body is undecodable: recorded
and dead-lettered like any other.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Callable, Optional

import dramatiq
from dramatiq.errors import DecodeError

GZIP_MAGIC = b"\x1f\x8b"
# json.dumps builds a new encoder on every call when given options; this one
# is built once (encoders keep no state between calls).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
#: The default bound of a decompressed body (settings pass CLAW_MAX_MESSAGE_BYTES).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def to_json(value) -> str:
    """Compact JSON text, non-ASCII kept as is: messages, records and results."""
    return _COMPACT.encode(value)


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """The decompressed body, or ValueError once it would exceed *limit* bytes.

    Never holds more than *limit* + 1 bytes of output, whatever the ratio.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    body = inflater.decompress(data, limit + 1)
    if len(body) > limit or inflater.unconsumed_tail:
        raise ValueError(f"decompresses to more than {limit} bytes (CLAW_MAX_MESSAGE_BYTES)")
    if not inflater.eof:
        raise ValueError("truncated gzip body")
    if inflater.unused_data:
        raise ValueError("data after the gzip body")
    return body


class CompressedJSONEncoder(dramatiq.Encoder):
    def __init__(self, threshold: int = 1024, on_decode_error: Optional[Callable[[bytes, str], None]] = None,
                 max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self.threshold = threshold
        self.max_bytes = max_bytes
        #: Called with the raw body and the reason when a message cannot be
        #: decoded; workers use it to record the message before Dramatiq
        #: dead-letters it.
        self.on_decode_error = on_decode_error

    def encode(self, data: dramatiq.encoder.MessageData) -> bytes:
        body = to_json(data).encode("utf-8")
        if len(body) > self.threshold:
            # mtime=0 keeps the output deterministic for identical messages.
            return gzip.compress(body, compresslevel=5, mtime=0)
        return body

    def decode(self, data: bytes) -> dramatiq.encoder.MessageData:
        try:
            raw = gunzip_bounded(data, self.max_bytes) if data[:2] == GZIP_MAGIC else data
            return json.loads(raw)
        except Exception as exc:
            if self.on_decode_error is not None:
                self.on_decode_error(bytes(data), f"{type(exc).__name__}: {exc}")
            raise DecodeError(f"undecodable message: {exc}", data, exc) from None

