"""Database connections: one pool per process (the database itself: :mod:`.postgres`)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator, Optional

import psycopg
from psycopg_pool import ConnectionPool

from pipeline.knowledge.config import get_knowledge_settings
from pipeline.knowledge.migrations import upgrade
from pipeline.knowledge.postgres import _configured_url, connect, database_url, embedded_server  # noqa: F401  (this module's public names since before the split)

_lock = threading.Lock()
_pool: Optional[ConnectionPool] = None
_pool_owner: Optional[tuple[int, Optional[str]]] = None  # (pid, configured URL) the pool was made for


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
