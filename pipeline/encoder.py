"""The wire format: JSON, gzip-compressed above a size threshold.

Every process installs the same encoder through :func:`pipeline.broker.make_broker`,
so a producer and a consumer always agree. Compressed bodies are recognised by
gzip's magic bytes (JSON never starts with them), so small messages stay plain
JSON that any AMQP tool can read.
"""

from __future__ import annotations

import gzip
import json
from typing import Callable, Optional

import dramatiq
from dramatiq.errors import DecodeError

GZIP_MAGIC = b"\x1f\x8b"
# json.dumps builds a new encoder on every call when given options; this one
# is built once (encoders keep no state between calls).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def to_json(value) -> str:
    """Compact JSON text, non-ASCII kept as is: messages, records and results."""
    return _COMPACT.encode(value)


class CompressedJSONEncoder(dramatiq.Encoder):
    def __init__(self, threshold: int = 1024, on_decode_error: Optional[Callable[[bytes, str], None]] = None):
        self.threshold = threshold
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
            raw = gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
            return json.loads(raw)
        except Exception as exc:
            if self.on_decode_error is not None:
                self.on_decode_error(bytes(data), f"{type(exc).__name__}: {exc}")
            raise DecodeError(f"undecodable message: {exc}", data, exc) from None
