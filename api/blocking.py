"""Blocking calls off the event loop: one thread pool per API process.

An API process serves every connection from one event loop, so a call that
waits on a socket (redis-py, pika, psycopg: the engine is synchronous) would
stall every open event stream and ``/health`` with it. Responders hand such
calls to this pool with ``await run_blocking(fn, ...)``; its size
(``CLAW_API_THREADS``) bounds how many engine calls a process runs at once,
while open streams and idle connections hold no thread at all.

The caller's context variables travel with the call, so request-scoped
values (a request id, a trace span) are visible inside the engine call too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, TypeVar

from pipeline.settings import get_settings

T = TypeVar("T")

_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(get_settings().api_threads, thread_name_prefix="claw-api")
    return _pool


async def run_blocking(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in the pool and wait for it without blocking the loop."""
    call = functools.partial(fn, *args, **kwargs) if kwargs else fn
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_executor(), context.run, call, *([] if kwargs else args))
