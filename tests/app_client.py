"""Falcon's TestClient for the (ASGI) API, run on a thread of its own.

An ASGI app needs an event loop; Falcon's client runs one on the calling
thread, which fails once Playwright's sync API (the browser tests) keeps a
loop running on the main thread. One dedicated thread runs every simulated
request, so the app's loop (and the event hub bound to it) stays the same.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from falcon import testing

_thread = ThreadPoolExecutor(1, thread_name_prefix="app-test-client")


class AppClient(testing.TestClient):
    def simulate_request(self, *args, **kwargs) -> testing.Result:
        return _thread.submit(super().simulate_request, *args, **kwargs).result()
