"""Keeping secrets and personal data out of messages, logs and receipts."""

from __future__ import annotations

import base64
from typing import Any, Iterable

REDACTED = "***"


def secret_variants(secrets: Iterable[str]) -> list[str]:
    """Each secret plus its base64 forms (SMTP AUTH sends them base64-encoded)."""
    out: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        out.add(secret)
        out.add(base64.b64encode(secret.encode()).decode())
    # longest first so a secret that contains another is replaced whole
    return sorted(out, key=len, reverse=True)


def redact(text: Any, secrets: Iterable[str]) -> str:
    """``text`` as a string with every secret replaced by ``***``."""
    result = str(text)
    for secret in secret_variants(secrets):
        result = result.replace(secret, REDACTED)
    return result


def redact_obj(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value with every string redacted (keys included)."""
    variants = secret_variants(secrets)
    if not variants:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for secret in variants:
                item = item.replace(secret, REDACTED)
            return item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def mask_recipient(recipient: str) -> str:
    """Enough of a recipient to recognise it in a log, not enough to harvest it."""
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    if recipient.startswith("+") and len(recipient) > 6:
        return f"{recipient[:3]}***{recipient[-3:]}"
    return recipient if len(recipient) <= 4 else f"{recipient[:2]}***{recipient[-2:]}"


def short_reason(text: Any, secrets: Iterable[str], limit: int = 300) -> str:
    """A provider's reason: one line, bounded, redacted."""
    line = " ".join(redact(text, secrets).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
