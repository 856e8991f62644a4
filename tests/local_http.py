"""What the tests' own small HTTP servers share: answering a request with a body."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Mapping, Optional


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json",
          headers: Optional[Mapping[str, str]] = None) -> None:
    """Answer *handler*'s request: *status*, *body* with its type and length, and any other *headers*."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
