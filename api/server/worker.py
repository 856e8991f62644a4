"""The gunicorn worker class: uvicorn on uvloop, speaking HTTP through :mod:`api.server.protocol`.

gunicorn supervises: it restarts a worker that dies, and kills one whose
event loop stops answering for ``timeout`` seconds (uvicorn's worker
heartbeats from the loop itself, so a loop blocked by a stuck call is
noticed; uvicorn's own ``--workers`` supervisor pings from a side thread and
would not notice).
"""

from __future__ import annotations

import logging
import resource

from uvicorn_worker import UvicornWorker

from api.server.protocol import GuardedHttpProtocol
from pipeline.settings import get_settings


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit of open files to the hard limit; return (soft, hard).

    Every open stream and every connection is a file descriptor, and the soft
    limit is often 1024: too few for thousands of streams. The hard limit is
    the operator's (``ulimit -Hn``, systemd ``LimitNOFILE``, compose ``ulimits``).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class ApiWorker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": GuardedHttpProtocol,
        "lifespan": "off",
        "access_log": False,  # api.server.asgi writes the access log (no headers, with timing)
        "server_header": False,
        "proxy_headers": False,  # the client address is the peer's; a TLS proxy in front logs the real one
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.config.timeout_keep_alive = settings.api_keepalive_seconds
        raise_open_files_limit()
        access = logging.getLogger("api.access")
        access.handlers = self.log.access_log.handlers
        access.setLevel(logging.INFO if self.cfg.accesslog else logging.WARNING)
        access.propagate = False
