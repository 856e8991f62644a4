"""Fixtures shared by every test: real Redis and RabbitMQ, own namespace and queues.

Each test gets a fresh Redis key namespace (deleted afterwards) and, when it
asks for an engine, test queues that are purged before and deleted after.
Worker processes are real ``claw-pipeline worker`` subprocesses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("CLAW_TEST_RUN", uuid.uuid4().hex[:8])
#: Every queue of this test run, the engine's own included, carries this prefix,
#: so tests never consume messages of another run or of a local `make run`.
QUEUE_PREFIX = f"t{os.environ['CLAW_TEST_RUN']}_"

from tests import sample_tasks  # noqa: E402  (declares the sample tasks with this run's queues)

#: A redis+cluster:// URL runs the suite against a Redis Cluster (``make test-redis-cluster`` starts one).
REDIS_URL = os.environ.get("CLAW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER_URL = os.environ.get("CLAW_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

def test_queue_names() -> list[str]:
    from pipeline.task import queue_names

    return queue_names(QUEUE_PREFIX)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def store_shards() -> int:
    """The state store's shard count for this run (CLAW_REDIS_SHARDS, or what the URL implies)."""
    from pipeline.settings import Settings

    return Settings(redis_url=REDIS_URL).shards


@pytest.fixture
def redis_client():
    from pipeline.redis_client import make_redis

    client = make_redis(REDIS_URL, socket_timeout=None, health_check_interval=0)
    yield client
    client.close()


def namespace_keys(client, name: str) -> list[str]:
    """Every key of namespace *name*: the plain names, and with shards the shared ones ({name}:...)
    and the shards' ({name:sNN}:...). A SCAN: for tests only."""
    return [key for pattern in (f"{name}:*", f"{{{name}}}:*", f"{{{name}:s*")
            for key in client.scan_iter(pattern, count=1000)]


def due_follow_ups(store) -> int:
    """How many workflow follow-ups wait to be published, over every shard."""
    return sum(store.redis.zcard(keys.follow_ups_due) for keys in store.keys.all_shards())


@pytest.fixture
def namespace(redis_client):
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    keys = namespace_keys(redis_client, name)
    for start in range(0, len(keys), 500):
        redis_client.delete(*keys[start : start + 500])


def _queue_names():
    for queue in test_queue_names():
        yield from (queue, f"{queue}.DQ", f"{queue}.XQ")


def purge_test_queues(delete: bool = False) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        for name in _queue_names():
            channel = connection.channel()
            try:
                if delete:
                    channel.queue_delete(name)
                else:
                    channel.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker:
                pass  # not declared yet
            finally:
                if channel.is_open:
                    channel.close()
    finally:
        connection.close()


def queue_depth(name: str) -> int:
    """Ready messages in a queue, named without the run's prefix."""
    name = QUEUE_PREFIX + name
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        return connection.channel().queue_declare(name, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0  # never declared: empty
    finally:
        connection.close()


@pytest.fixture
def env(namespace):
    """Environment for processes started by a test: its namespace, its queues, fast settings."""
    values = {
        **os.environ,
        "CLAW_NAMESPACE": namespace,
        "CLAW_QUEUE_PREFIX": QUEUE_PREFIX,
        "CLAW_REDIS_URL": REDIS_URL,
        "CLAW_BROKER_URL": BROKER_URL,
        "CLAW_TASK_MODULES": "tests.sample_tasks",
        "CLAW_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "CLAW_WORKER_TTL_SECONDS": "3",
        "CLAW_SHUTDOWN_TIMEOUT_SECONDS": "20",
        "PYTHONPATH": str(ROOT),
    }
    return values


@pytest.fixture
def settings(env, monkeypatch):
    from pipeline.settings import get_settings, load_settings

    for key, value in env.items():
        if key.startswith("CLAW_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield load_settings()
    get_settings.cache_clear()


@pytest.fixture
def engine(settings):
    from pipeline.engine import make_engine, set_engine

    purge_test_queues()
    built = make_engine(settings)
    set_engine(built)
    yield built
    set_engine(None)
    built.close()
    purge_test_queues(delete=True)


class Subprocess:
    """A process a test starts: in its own session (its children go with it), output in a log file."""

    def __init__(self, argv: list[str], env: dict, label: str, cwd: Path = ROOT):
        self.log = open(Path(os.environ.get("CLAW_TEST_LOGS", "/tmp")) / f"{label}-{uuid.uuid4().hex[:6]}.log", "w+")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL to the whole group if it does not stop in time; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
        return self.proc.returncode

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class WorkerProcess(Subprocess):
    """A real ``claw-pipeline worker`` supervisor."""

    def __init__(self, env: dict, *args: str):
        super().__init__([sys.executable, "-m", "pipeline.cli", "worker", *args], env, "worker")


@pytest.fixture
def start_worker(env, engine):
    """Start worker supervisors on the test queues; all stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(*args: str, queues=(sample_tasks.QUEUE,), extra_env: dict | None = None, wait: bool = True) -> WorkerProcess:
        worker = WorkerProcess({**env, **(extra_env or {})}, "--queues", *queues, *args)
        started.append(worker)
        if wait:
            wait_until(lambda: engine.workers.list() or worker.proc.poll() is not None, 30, message="a worker heartbeat")
            assert worker.proc.poll() is None, worker.output()
        return worker

    yield start
    for worker in started:
        worker.stop()
        worker.log.close()


def wait_for_state(engine, task_id: str, states, timeout: float = 30.0) -> dict:
    states = (states,) if isinstance(states, str) else tuple(states)
    return wait_until(
        lambda: (r := engine.store.get(task_id)) and r["state"] in states and r,
        timeout,
        message=f"task {task_id} to reach {states} (now {(engine.store.get(task_id) or {}).get('state')})",
    )


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (its pip wheel; no browser download).

    One per test session: Playwright's sync API cannot run twice in a process.
    """
    from tests.dashboard.conftest import CHROMIUM_ARGS, chromium_path

    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed and could not be: `apt-get install chromium` (make test-deps does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
