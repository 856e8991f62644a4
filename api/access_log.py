"""The API's access log: one short line per request, without headers.

gunicorn's own access logger builds a dictionary of every request header,
response header and environ variable for each request, whatever the format
uses; under load that was about a seventh of an API worker's CPU. This
logger writes the same line from the few values it shows:

    127.0.0.1 "GET /api/v1/tasks/stats HTTP/1.1" 200 1043 2ms pid=<8751>

Headers are never written, so the bearer token cannot reach the log.
"""

from __future__ import annotations

import os

from gunicorn import glogging


class AccessLogger(glogging.Logger):
    def access(self, resp, req, environ, request_time) -> None:
        if not self.cfg.accesslog:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = resp.sent if getattr(resp, "sent", None) is not None else "-"
        millis = request_time.seconds * 1000 + request_time.microseconds // 1000
        self.access_log.info(
            '%s "%s %s %s" %s %s %dms pid=<%d>',
            environ.get("REMOTE_ADDR", "-"), environ["REQUEST_METHOD"], environ["RAW_URI"], environ["SERVER_PROTOCOL"],
            status, sent, millis, os.getpid(),
        )
