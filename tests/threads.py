"""Calls made at the same moment from several threads, for the tests of what must happen once."""

from __future__ import annotations

import threading
from typing import Any, Callable


def at_once(call: Callable[[], Any], times: int) -> tuple[list[Any], list[Exception]]:
    """Run *call* in *times* threads started together; what the calls returned and what they raised."""
    results: list[Any] = []
    errors: list[Exception] = []

    def run() -> None:
        try:
            results.append(call())
        except Exception as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
