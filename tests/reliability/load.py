"""A steady load on the API for fault tests: threads posting bulk submissions until stopped, answers sorted."""

from __future__ import annotations

import threading
import time
from typing import Optional

import requests


class SubmitLoad:
    """*threads* threads each POST ``/api/v1/tasks/bulk`` with *batch* copies of *task*, pausing
    *pause* s after each accepted request (a load the workers keep up with)."""

    def __init__(self, server, task: dict, batch: int = 10, threads: int = 2, pause: float = 0.05):
        self.server, self.task, self.batch, self.pause = server, task, batch, pause
        #: (request sent, answered, task id) of every accepted task.
        self.accepted: list[tuple[float, float, str]] = []
        #: When each request answered 503 with Retry-After was sent.
        self.unavailable: list[float] = []
        #: Every other answer (a 500, a 503 without Retry-After, a broken connection): must stay empty.
        self.wrong: list[str] = []
        self.slowest = 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._submit_forever) for _ in range(threads)]

    def __enter__(self) -> "SubmitLoad":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    @property
    def ids(self) -> list[str]:
        return [task_id for _, _, task_id in self.accepted]

    def accepted_after(self, moment: float) -> Optional[float]:
        """When the first request sent after *moment* was accepted (None: none yet)."""
        return next((answered for sent, answered, _ in self.accepted if sent > moment), None)

    def _submit_forever(self) -> None:
        body = {"tasks": [self.task] * self.batch}
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                answer = self.server.call("POST", "/api/v1/tasks/bulk", json=body, timeout=60)
            except requests.RequestException as exc:
                self.wrong.append(f"connection: {exc}")
                continue
            answered = time.monotonic()
            self.slowest = max(self.slowest, answered - sent)
            if answer.status_code == 202:
                self.accepted.extend((sent, answered, task_id) for task_id in answer.json()["task_ids"])
                time.sleep(self.pause)
            elif answer.status_code == 503 and answer.headers.get("Retry-After"):
                self.unavailable.append(sent)
                time.sleep(0.2)
            else:
                self.wrong.append(f"{answer.status_code}: {answer.text[:300]}")
