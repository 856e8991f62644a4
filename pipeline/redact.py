"""Redaction of secret-looking fields before anything is stored or shown."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"(secret|token|passw(or)?d|passwd|api[_-]?key|apikey|authori[sz]ation|credential|private[_-]?key|cookie|session[_-]?id)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact(value: Any) -> Any:
    """A copy of *value* with every field named like a secret replaced by ``***``."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_name(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
