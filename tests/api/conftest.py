"""Fixtures for the API: in-process apps on the test engine, and a real gunicorn server.

Tokens have one role each; ``Api`` sends the token of the role a call asks for.
"""

from __future__ import annotations

import sys
import uuid

import pytest
import requests
from falcon import testing

from pipeline.settings import load_settings
from pipeline.tokens import parse_tokens
from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, Subprocess, free_port, wait_until
from tests.app_client import AppClient

#: The sample tasks' queue as RabbitMQ and the task records name it.
QUEUE = QUEUE_PREFIX + sample_tasks.QUEUE
TOKENS = {role: f"{role}-token-{uuid.uuid4().hex}" for role in ("read", "submit", "admin")}
TOKENS_ENV = ",".join(f"{role}:{token}:{role}" for role, token in TOKENS.items())
#: The same, as the settings hold them (for settings.model_copy, which does not parse).
SERVICE_TOKENS = parse_tokens(TOKENS_ENV)
#: Keys signing user tokens (the first signs).
USER_TOKEN_KEYS_ENV = f"k2:{uuid.uuid4().hex}{uuid.uuid4().hex},k1:{uuid.uuid4().hex}{uuid.uuid4().hex}"


def auth(role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}


class Api:
    """A Falcon test client that authenticates as a role (admin unless told)."""

    def __init__(self, app):
        self.app = app
        self.client = AppClient(app)

    def request(self, method: str, path: str, role: str | None = "admin", headers=None, **kwargs) -> testing.Result:
        return self.client.simulate_request(method, path, headers={**auth(role), **(headers or {})}, **kwargs)

    def get(self, path: str, role: str | None = "read", **kwargs) -> testing.Result:
        return self.request("GET", path, role, **kwargs)

    def post(self, path: str, role: str | None = "admin", **kwargs) -> testing.Result:
        return self.request("POST", path, role, **kwargs)


@pytest.fixture
def api_settings(settings):
    return settings.model_copy(update={"api_tokens": SERVICE_TOKENS,
                                       "user_token_keys": load_settings(user_token_keys=USER_TOKEN_KEYS_ENV).user_token_keys})


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




class Server(Subprocess):
    """``claw-pipeline api`` (gunicorn, the package's configuration) in a subprocess, answering /health."""

    def __init__(self, env: dict, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        code = "from api.cli import run_api; import sys; run_api(sys.argv[1], int(sys.argv[2]))"
        argv = [sys.executable, "-c", code, f"127.0.0.1:{self.port}", str(workers)]
        super().__init__(argv, env, "api")
        try:
            wait_until(self._answers, 30, interval=0.1, message="gunicorn to answer /health")
        except BaseException:
            self.close()  # never leave a server behind when it did not come up
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

    def close(self) -> None:
        self.stop(15)
        self.log.close()


@pytest.fixture
def server(env, engine):
    """The real API under gunicorn (2 uvicorn workers) on this test's namespace and queues."""
    started = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_USER_TOKEN_KEYS": USER_TOKEN_KEYS_ENV})
    yield started
    started.close()
