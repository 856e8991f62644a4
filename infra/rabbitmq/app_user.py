"""Give the application its own RabbitMQ user: its vhost only, no administrator rights.

Run once per start by compose's ``rabbitmq-setup`` service (the application image, so only the standard
library is needed), through the management HTTP API with the administrator's credentials, which the
application itself never gets. Idempotent: the user is created, or its password and rights are set again.

The application user may configure, write and read everything in its own vhost (it declares its
queues, their delay and dead-letter queues, and publishes through the default exchange), and carries the
``management`` tag only, which lets it read its own vhost's queue depths and rates over the same API.
It cannot see or touch other vhosts, users, policies or the cluster.

Environment: RABBITMQ_MANAGEMENT (e.g. http://rabbitmq:15672), RABBITMQ_USER and RABBITMQ_PASSWORD (the
administrator), RABBITMQ_APP_USER and RABBITMQ_APP_PASSWORD, RABBITMQ_VHOST (default ``claw``).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

#: The management API answers a little after the node's AMQP port (which compose's health check tests).
WAIT_SECONDS = 120


def call(base: str, admin: tuple[str, str], method: str, path: str, body: dict | None = None) -> int:
    request = urllib.request.Request(
        base.rstrip("/") + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(":".join(admin).encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def setup(base: str, admin: tuple[str, str], user: str, password: str, vhost: str) -> None:
    if user == admin[0]:
        raise SystemExit("RABBITMQ_APP_USER must differ from RABBITMQ_USER (the administrator)")
    quoted_user, quoted_vhost = urllib.parse.quote(user, safe=""), urllib.parse.quote(vhost, safe="")
    call(base, admin, "PUT", f"/api/vhosts/{quoted_vhost}")
    call(base, admin, "PUT", f"/api/users/{quoted_user}", {"password": password, "tags": "management"})
    call(base, admin, "PUT", f"/api/permissions/{quoted_vhost}/{quoted_user}",
         {"configure": ".*", "write": ".*", "read": ".*"})


def main() -> int:
    env = os.environ
    base = env.get("RABBITMQ_MANAGEMENT", "http://rabbitmq:15672")
    admin = (env["RABBITMQ_USER"], env["RABBITMQ_PASSWORD"])
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            setup(base, admin, env["RABBITMQ_APP_USER"], env["RABBITMQ_APP_PASSWORD"], env.get("RABBITMQ_VHOST", "claw"))
            break
        except (urllib.error.URLError, ConnectionError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code in (400, 401, 403):
                print(f"rabbitmq-setup: the management API refused: HTTP {exc.code} {exc.reason}", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(f"rabbitmq-setup: the management API did not answer: {exc}", file=sys.stderr)
                return 1
            time.sleep(2)
    print(f"rabbitmq-setup: user {env['RABBITMQ_APP_USER']!r} may use vhost {env.get('RABBITMQ_VHOST', 'claw')!r} only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
