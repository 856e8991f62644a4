"""The smallest backend a browser chat needs: it serves chat.html and hands the page a user token.

The browser must never hold a service token (any user could read it from the
page and act as the company). Your product's backend holds one with the
``users:mint`` scope; when a user of yours opens the chat, the backend asks
claw-pipeline for a short-lived token for *that* user and gives it to the
page, which then talks to the API directly (CORS) with it:

    POST /session   {"user": "ada"}   ->   {"token": "eyJ...", "expires_at": ..., "api": "http://127.0.0.1:8000"}

Here "who is the user" is whatever name the page sends: a stand-in for your
own login (a session cookie, SSO...). Everything else is as it would be.

Run it next to ``make run`` (which allows this origin when CLAW_CORS_ORIGINS
names it; see docs/usage.md, "Chat page")::

    CLAW_CORS_ORIGINS=http://127.0.0.1:8080 make run       # the API, allowing the page's origin
    python examples/chat_backend.py --port 8080             # then open http://127.0.0.1:8080/

Settings: ``CLAW_API`` (the API's base URL, default http://127.0.0.1:8000),
``CLAW_TOKEN`` (a service token with users:mint; default: the dev admin token
``make run`` writes to var/dev-admin-token), ``--tenant`` (the users' tenant:
which knowledge bases they may search).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
PAGE = HERE / "chat.html"
TOKEN_FILE = HERE.parent / "var" / "dev-admin-token"
#: What this demo accepts as a user's name (your login decides who the user is).
USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class ChatBackend(BaseHTTPRequestHandler):
    api: str
    service_token: str
    tenant: str | None

    def do_GET(self) -> None:
        if self.path not in ("/", "/chat.html"):
            self.answer(404, {"error": "not found"})
            return
        body = PAGE.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path != "/session":
            self.answer(404, {"error": "not found"})
            return
        try:
            user = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}").get("user", "")
        except (ValueError, AttributeError):
            user = ""
        if not isinstance(user, str) or not USER.match(user):
            self.answer(400, {"error": "give your name: letters, digits, _ . @ -"})
            return
        # Your backend would take the user from its own session here, never from the request body.
        minted = requests.post(f"{self.api}/api/v1/auth/user-tokens", timeout=10,
                               headers={"Authorization": f"Bearer {self.service_token}"},
                               json={"user_id": user, "tenant_id": self.tenant, "ttl_seconds": 900})
        if minted.status_code != 201:
            self.answer(502, {"error": f"the API did not mint a token: HTTP {minted.status_code} {minted.text[:200]}"})
            return
        self.answer(200, {**minted.json(), "api": self.api})

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # one line per request, without the body
        sys.stderr.write(f"chat-backend {self.address_string()} {format % args}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--tenant", default=os.environ.get("CLAW_CHAT_TENANT") or None)
    args = parser.parse_args()
    token = os.environ.get("CLAW_TOKEN") or (TOKEN_FILE.read_text().strip() if TOKEN_FILE.exists() else "")
    if not token:
        sys.exit("set CLAW_TOKEN (a service token with the users:mint scope), or run `make run` to create var/dev-admin-token")
    handler = type("Handler", (ChatBackend,), {"api": os.environ.get("CLAW_API", "http://127.0.0.1:8000").rstrip("/"),
                                               "service_token": token, "tenant": args.tenant})
    server = ThreadingHTTPServer((args.bind, args.port), handler)
    print(f"chat page: http://{args.bind}:{server.server_address[1]}/  (API {handler.api})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
