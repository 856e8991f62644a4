"""Fixtures for the API: in-process apps on the test engine, and a real gunicorn server.

Tokens have one role each; ``Api`` sends the token of the role a call asks for.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from falcon import testing

from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, ROOT, wait_until

#: The sample tasks' queue as RabbitMQ and the task records name it.
QUEUE = QUEUE_PREFIX + sample_tasks.QUEUE
TOKENS = {role: f"{role}-token-{uuid.uuid4().hex}" for role in ("read", "submit", "admin")}
TOKENS_ENV = ",".join(f"{token}:{role}" for role, token in TOKENS.items())


def auth(role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}


class Api:
    """A Falcon test client that authenticates as a role (admin unless told)."""

    def __init__(self, app):
        self.app = app
        self.client = testing.TestClient(app)

    def request(self, method: str, path: str, role: str | None = "admin", headers=None, **kwargs) -> testing.Result:
        return self.client.simulate_request(method, path, headers={**auth(role), **(headers or {})}, **kwargs)

    def get(self, path: str, role: str | None = "read", **kwargs) -> testing.Result:
        return self.request("GET", path, role, **kwargs)

    def post(self, path: str, role: str | None = "admin", **kwargs) -> testing.Result:
        return self.request("POST", path, role, **kwargs)


@pytest.fixture
def api_settings(settings):
    return settings.model_copy(update={"api_tokens": {token: role for role, token in TOKENS.items()}})


@pytest.fixture
def make_api(engine, api_settings):
    """Build an Api over ``create_app(engine, settings, extra_routes)``."""
    from api.app import create_app

    def make(extra_routes=(), settings=None) -> Api:
        return Api(create_app(engine, settings or api_settings, extra_routes=extra_routes))

    return make


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``claw-pipeline api`` (gunicorn with infra/gunicorn.conf.py) in a subprocess."""

    def __init__(self, env: dict, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / f"api-{uuid.uuid4().hex[:6]}.log", "w+")
        code = "from api.cli import run_api; import sys; run_api(sys.argv[1], int(sys.argv[2]))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, f"127.0.0.1:{self.port}", "2"],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_until(self._answers, 30, interval=0.1, message="gunicorn to answer /health")
        except BaseException:
            self.stop()  # never leave a server behind when it did not come up
            raise

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.output()
        try:
            return requests.get(f"{self.url}/health", timeout=1).ok
        except requests.RequestException:  # not listening yet, or its workers still booting
            return False

    def call(self, method: str, path: str, role: str | None = "admin", **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        headers = {**auth(role), **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, **kwargs)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:  # gunicorn's master: SIGTERM stops its workers gracefully
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture
def server(env, engine):
    """The real API under gunicorn (2 gthread workers) on this test's namespace and queues."""
    started = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV}, Path(os.environ.get("CLAW_TEST_LOGS", "/tmp")))
    yield started
    started.stop()
