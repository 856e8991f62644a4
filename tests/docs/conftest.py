"""The documentation's commands, run for real.

* ``Stack`` — ``python -m pipeline.cli run`` (API + worker + scheduler, what ``make run`` starts) on a free
  port, with a RabbitMQ virtual host, Redis namespace and PostgreSQL database of its own, and an admin
  token set through ``CLAW_API_TOKENS`` (so ``var/dev-admin-token`` is neither read nor written). Queues
  keep their real names (no ``CLAW_QUEUE_PREFIX``), so the output matches what the pages show.
* ``fenced_blocks`` / ``run_blocks`` — the fenced code blocks of a Markdown page, and a runner that executes
  the ``bash`` and ``python`` ones in order like one terminal session: variables a ``bash`` block
  ``export``s are seen by the blocks after it. Blocks whose info string is ``bash norun`` are not run.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psycopg
import pytest
import redis
import requests
from psycopg import sql

from tests.conftest import REDIS_URL, ROOT

RABBIT_MANAGEMENT = os.environ.get("CLAW_TEST_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
RABBIT_AUTH = ("guest", "guest")
RABBIT_AMQP = os.environ.get("CLAW_TEST_RABBITMQ_AMQP", "amqp://guest:guest@127.0.0.1:5672")

LOGS = Path(os.environ.get("CLAW_TEST_LOGS", "/tmp"))
SNIPPET_TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user_environment() -> dict[str, str]:
    """The environment of a developer's shell, without their own CLAW_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CLAW_") or k.startswith("CLAW_TEST_")}


# -- database ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def docs_database_server() -> str:
    """Admin URL of the PostgreSQL server the docs tests create their databases on."""
    from pipeline.knowledge import db

    return os.environ.get("CLAW_TEST_DATABASE_URL") or db.embedded_server().get_uri()


def create_database(admin_url: str) -> tuple[str, str]:
    name = f"claw_docs_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- the stack ---------------------------------------------------------------------------------

class Stack:
    """``claw-pipeline run`` in a subprocess, isolated from every other run."""

    def __init__(self, label: str, database_url: str, extra_env: Optional[dict[str, str]] = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = f"docs-admin-{uuid.uuid4().hex}"
        self.namespace = f"test-docs-{label}-{uuid.uuid4().hex[:8]}"
        self.vhost = f"claw-docs-{label}-{uuid.uuid4().hex[:8]}"
        #: The CLAW_* settings of this deployment (a client process needs the same ones).
        self.settings_env = {
            "CLAW_NAMESPACE": self.namespace,
            "CLAW_REDIS_URL": REDIS_URL,
            "CLAW_BROKER_URL": f"{RABBIT_AMQP}/{self.vhost}",
            "CLAW_RABBITMQ_MANAGEMENT_URL": RABBIT_MANAGEMENT.replace("://", "://guest:guest@", 1),
            "CLAW_DATABASE_URL": database_url,
            "CLAW_API_TOKENS": f"{self.token}:admin",
            "CLAW_HEARTBEAT_INTERVAL_SECONDS": "0.5",
            "CLAW_WORKER_TTL_SECONDS": "3",
            "CLAW_SHUTDOWN_TIMEOUT_SECONDS": "20",
            **(extra_env or {}),
        }
        self.log_path = LOGS / f"docs-stack-{label}-{uuid.uuid4().hex[:6]}.log"
        self.log = open(self.log_path, "w+")
        self.proc: Optional[subprocess.Popen] = None

    def start(self, workers: int = 2, timeout: float = 90) -> "Stack":
        requests.put(f"{RABBIT_MANAGEMENT}/api/vhosts/{self.vhost}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
        requests.put(f"{RABBIT_MANAGEMENT}/api/permissions/{self.vhost}/guest", auth=RABBIT_AUTH, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        env = {**user_environment(), **self.settings_env, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "run", "--bind", f"127.0.0.1:{self.port}"],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the stack exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            if self._ready(workers):
                return self
            time.sleep(0.3)
        raise AssertionError(f"the stack was not ready after {timeout}s:\n{self.output()[-4000:]}")

    def _ready(self, workers: int) -> bool:
        try:
            if requests.get(f"{self.url}/ready", timeout=2).status_code != 200:
                return False
            answer = requests.get(f"{self.url}/api/v1/tasks/workers", headers=self.auth, timeout=2)
            return answer.status_code == 200 and answer.json()["count"] >= workers
        except requests.RequestException:
            return False

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the stack stops its children gracefully
            try:
                self.proc.wait(45)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        try:
            self._clean_redis()
        finally:
            self._delete_queues()

    def _clean_redis(self) -> None:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(f"{self.namespace}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start:start + 500])
        finally:
            client.close()

    def _delete_queues(self) -> None:
        """Delete the virtual host (and so its queues); RabbitMQ may be restarting, so try for a while."""
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.delete(f"{RABBIT_MANAGEMENT}/api/vhosts/{self.vhost}", auth=RABBIT_AUTH, timeout=30)
                if answer.status_code in (204, 404):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"could not delete the RabbitMQ virtual host {self.vhost}")
            time.sleep(2)


@pytest.fixture(scope="module")
def make_stack(docs_database_server):
    """``make_stack(label, **env)`` starts a stack with a fresh database; all are stopped at the end."""
    started: list[tuple[Stack, str]] = []

    def make(label: str, workers: int = 2, **extra_env: str) -> Stack:
        name, url = create_database(docs_database_server)
        stack = Stack(label, url, extra_env)
        started.append((stack, name))
        return stack.start(workers)

    yield make
    problems = []
    for stack, name in started:
        for cleanup in (stack.stop, lambda: drop_database(docs_database_server, name)):
            try:
                cleanup()
            except Exception as exc:  # clean up the rest anyway, then report
                problems.append(f"{stack.vhost}: {exc!r}")
    assert not problems, problems


# -- Markdown code blocks ----------------------------------------------------------------------

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
#: Info strings a page may use. Anything else that could hold commands (sh, shell, console, py ...)
#: is refused, so a snippet cannot be hidden from the runner by its spelling.
KNOWN_INFO = {"bash", "bash norun", "python", "python norun", "text", "json", "ini", "yaml", "mermaid", "html"}


@dataclass
class Block:
    info: str
    code: str
    line: int

    @property
    def runs(self) -> bool:
        return self.info in ("bash", "python")


def fenced_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        info = " ".join(match.group(1).split())
        blocks.append(Block(info, match.group(2), text.count("\n", 0, match.start()) + 1))
    unknown = {b.info for b in blocks} - KNOWN_INFO
    assert not unknown, f"{path.name}: unknown code block info strings {sorted(unknown)} (use one of {sorted(KNOWN_INFO)})"
    return blocks


@dataclass
class Ran:
    block: Block
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_blocks(blocks: list[Block], env: dict[str, str], workdir: Path, page: str) -> list[Ran]:
    """Run the runnable blocks in order like one shell session; stop at the first failure."""
    results = []
    env = dict(env)
    for number, block in enumerate((b for b in blocks if b.runs), start=1):
        started = time.monotonic()
        state = workdir / f"env-{number}"
        if block.info == "bash":
            script = workdir / f"block-{number}.sh"
            script.write_text(f"set -euo pipefail\n{block.code}\nenv -0 > '{state}'\n")
            command = ["bash", str(script)]
        else:
            command = [sys.executable, "-c", block.code]
        try:
            proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=SNIPPET_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{page} line {block.line}: the {block.info} block did not finish in "
                                 f"{SNIPPET_TIMEOUT_SECONDS}s:\n{block.code}\nstdout so far:\n{exc.stdout}") from None
        ran = Ran(block, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        results.append(ran)
        assert proc.returncode == 0, (
            f"{page} line {block.line}: the {block.info} block exited with {proc.returncode}\n"
            f"--- block\n{block.code}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        )
        if block.info == "bash":
            env = dict(item.split("=", 1) for item in state.read_text().split("\0") if "=" in item)
    return results
