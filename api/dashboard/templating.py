"""Jinja2 templates and the filters they use.

Jinja2 rather than string.Template because task arguments, results and
tracebacks are arbitrary text: autoescaping every value is the only way a
task argument can never become markup on an operator's screen.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import jinja2

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"


def format_time(epoch: Optional[float]) -> str:
    if not epoch:
        return "—"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_iso(epoch: Optional[float]) -> str:
    """ISO 8601 in UTC, for ``<time datetime>`` (the browser shows it in its own time zone)."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds") if epoch else ""


def format_age(epoch: Optional[float], now: Optional[float] = None) -> str:
    """'12 s ago' / 'in 3 min': how far *epoch* is from now, coarsely."""
    if not epoch:
        return ""
    delta = (time.time() if now is None else now) - epoch
    seconds = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"{text} ago" if delta >= 0 else f"in {text}"


def format_ms(value: Optional[float]) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def compact_json(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def static_version(name: str) -> str:
    """A content hash for cache-busting ``?v=`` query strings."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(time=format_time, iso=format_iso, age=format_age, ms=format_ms, pretty=pretty_json, compact=compact_json)
    env.globals["static_versions"] = {name: static_version(name) for name in ("dashboard.css", "dashboard.js")}
    return env
