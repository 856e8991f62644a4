"""Async code in tests, run on a thread of its own: Falcon's TestClient for the (ASGI) API, and coroutines.

An ASGI app needs an event loop; Falcon's client runs one on the calling
thread, which fails once Playwright's sync API (the browser tests) keeps a
loop running on the main thread. One dedicated thread runs every simulated
request, so the app's loop (and the event hub bound to it) stays the same;
:func:`run_async` runs a test's own coroutine on another.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Coroutine

from falcon import testing

_thread = ThreadPoolExecutor(1, thread_name_prefix="app-test-client")


class AppClient(testing.TestClient):
    def simulate_request(self, *args, **kwargs) -> testing.Result:
        return _thread.submit(super().simulate_request, *args, **kwargs).result()


def run_async(coroutine: Coroutine, timeout: float = 120) -> Any:
    """``asyncio.run(coroutine)`` with a time-out, on a fresh thread and loop."""
    with ThreadPoolExecutor(1, thread_name_prefix="test-loop") as thread:
        return thread.submit(asyncio.run, asyncio.wait_for(coroutine, timeout)).result()
