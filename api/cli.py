"""``claw-pipeline api``: run the API under gunicorn with ``infra/gunicorn.conf.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn, Optional

from api.auth import check_auth_config
from pipeline.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONFIG = ROOT / "infra" / "gunicorn.conf.py"


def run_api(bind: Optional[str] = None, workers: Optional[int] = None) -> NoReturn:
    """Replace this process with gunicorn serving ``api.wsgi:app``.

    Settings are checked first, so a missing token or bad variable is one
    ConfigError line here instead of a traceback in every gunicorn worker.
    """
    check_auth_config(get_settings())
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), "--chdir", str(ROOT)]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    argv.append("api.wsgi:app")
    os.execv(sys.executable, argv)
