"""``claw-pipeline api``: gunicorn with the package's own configuration (:mod:`api.server.gunicorn_conf`)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn, Optional

from api.auth import check_auth_config
from api.server.worker import raise_open_files_limit
from pipeline.settings import get_settings

GUNICORN_CONFIG = "python:api.server.gunicorn_conf"


def run_api(bind: Optional[str] = None, workers: Optional[int] = None) -> NoReturn:
    """Replace this process with gunicorn serving ``api.asgi:app``.

    Settings are checked first, so a missing token or bad variable is one
    ConfigError line here instead of a traceback in every worker. With
    several workers and no PROMETHEUS_MULTIPROC_DIR, request metrics are
    aggregated in ``CLAW_DATA_DIR/api-metrics-<pid>`` (removed at exit).
    """
    settings = get_settings()
    check_auth_config(settings)
    raise_open_files_limit()  # inherited by gunicorn and its workers
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ and (workers or settings.api_workers) > 1:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str((settings.data_dir / f"api-metrics-{os.getpid()}").absolute())
    argv = [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    argv.append("api.asgi:app")
    os.execv(sys.executable, argv)
