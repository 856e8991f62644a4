"""``claw-pipeline worker``: a supervisor and its worker processes.

Dramatiq's own master stops every process when one exits, and reloads all
of them on SIGHUP. Celery users expect more: a process recycled after N
tasks or replaced after a hard time limit while its siblings keep working,
and a crashed process brought back. So the supervisor here forks the
worker processes itself and replaces any that exits, unless it exited
because it was told to shut down.

Signals to the supervisor: SIGTERM/SIGINT stop everything gracefully
(running tasks finish, prefetched messages go back to RabbitMQ); SIGHUP
restarts every process gracefully, one by one.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import dramatiq

from pipeline.engine import make_engine, make_registry, make_store
from pipeline.middleware.heartbeat import Heartbeat
from pipeline.middleware.recycle import MaxTasksPerChild
from pipeline.middleware.state import worker_identity
from pipeline.middleware.time_limits import TimeLimits
from pipeline.errors import ConfigError
from pipeline.settings import Settings, get_settings
from pipeline.state.store import to_json
from pipeline.task import QUEUES

logger = logging.getLogger("pipeline.worker")

EXIT_SHUTDOWN = 0  # told to stop: not replaced
EXIT_RECYCLE = 3  # max tasks reached or pool restart: replaced at once
EXIT_REPLACE = 4  # a task was stuck past its hard limit: replaced at once
EXIT_CONFIG = 2  # cannot start with these settings: replacing it would not help
RESPAWN_BACKOFF_SECONDS = 1.0
#: A process that dies this soon after starting, this many times in a row,
#: means something is wrong with the host or the code, not with one task.
QUICK_DEATH_SECONDS = 5.0
QUICK_DEATHS_LIMIT = 5


@dataclass
class WorkerOptions:
    processes: int
    threads: int
    queues: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "WorkerOptions":
        values = {"processes": settings.worker_processes, "threads": settings.worker_threads, "queues": settings.worker_queues}
        values.update({k: v for k, v in overrides.items() if v})
        return cls(**values)


class Lifecycle:
    """How a worker process is asked to end, and with which exit code."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.code = EXIT_SHUTDOWN
        self.stop_timeout_ms: int | None = None

    def request(self, code: int, stop_timeout_ms: int | None = None) -> None:
        if not self.event.is_set():
            self.code = code
            self.stop_timeout_ms = stop_timeout_ms
            self.event.set()


def worker_process(node: str, options: WorkerOptions) -> None:
    """Body of one worker process; settings problems end it with one line and EXIT_CONFIG."""
    try:
        _serve(node, options)
    except ConfigError as exc:
        print(f"claw-pipeline: error: {exc}", file=sys.stderr, flush=True)
        os._exit(EXIT_CONFIG)


def _serve(node: str, options: WorkerOptions) -> None:
    """A Dramatiq Worker with the engine's middleware, until told to stop."""
    settings = get_settings()
    lifecycle = Lifecycle()
    signal.signal(signal.SIGTERM, lambda *_: lifecycle.request(EXIT_SHUTDOWN))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; Ctrl-C reaches it too
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, lambda *_: lifecycle.request(EXIT_RECYCLE))

    queues = [settings.queue_prefix + queue for queue in options.queues or QUEUES]
    store, registry = make_store(settings), make_registry(settings)

    def on_blocked(message, others_need_seconds: float) -> None:
        error = {
            "type": "HardTimeLimitExceeded",
            "message": "blocked past its hard time limit (in a C call); the worker process was replaced",
        }
        store.finish(message.message_id, "FAILURE", {"finished_at": f"{time.time():.6f}", "error": to_json(error)})
        lifecycle.request(EXIT_REPLACE, int((others_need_seconds + 2) * 1000))

    def on_command(command: str) -> None:
        lifecycle.request(EXIT_RECYCLE if command == "pool_restart" else EXIT_SHUTDOWN)

    middleware = [
        Heartbeat(
            registry, store, worker_id=worker_identity(), node=node, queues=queues, threads=options.threads,
            interval=settings.heartbeat_interval_seconds, on_command=on_command,
        )
    ]
    if settings.max_tasks_per_child:
        middleware.append(MaxTasksPerChild(settings.max_tasks_per_child, lambda: lifecycle.request(EXIT_RECYCLE)))
    engine = make_engine(
        settings, store=store, workers=registry, extra_middleware=middleware, time_limits=TimeLimits(on_blocked)
    )

    worker = dramatiq.Worker(
        engine.broker,
        queues=set(queues),
        worker_threads=options.threads,
        worker_timeout=250,
        **({"queue_prefetch": settings.queue_prefetch} if settings.queue_prefetch else {}),
    )
    engine.broker.emit_after("process_boot")
    worker.start()
    logger.info("Worker process %s consuming %s with %d threads.", worker_identity(), ",".join(queues), options.threads)
    lifecycle.event.wait()
    timeout_ms = lifecycle.stop_timeout_ms or int(settings.shutdown_timeout_seconds * 1000)
    worker.stop(timeout=timeout_ms)
    engine.close()
    logging.shutdown()
    os._exit(lifecycle.code)


class Supervisor:
    """Keeps *processes* worker processes running until told to stop."""

    def __init__(self, options: WorkerOptions):
        self.options = options
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self.context = multiprocessing.get_context("fork")
        self.children: dict[int, multiprocessing.Process] = {}
        self.stopping = False
        self.restart_requested = False
        self.started_at: dict[int, float] = {}
        self.quick_deaths = 0
        self.exit_code = 0

    def spawn(self, slot: int) -> None:
        process = self.context.Process(target=worker_process, args=(self.node, self.options), name=f"claw-worker-{slot}")
        process.start()
        self.children[slot] = process
        self.started_at[slot] = time.monotonic()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._restart)
        for slot in range(self.options.processes):
            self.spawn(slot)
        logger.info("Supervisor %s started %d worker processes.", self.node, self.options.processes)
        while self.children:
            if self.restart_requested:
                self.restart_requested = False
                for process in list(self.children.values()):
                    _signal(process, signal.SIGUSR1)
            for slot, process in list(self.children.items()):
                if process.is_alive():
                    continue
                process.join()
                del self.children[slot]
                self._after_exit(slot, process.exitcode)
            time.sleep(0.1)
        logger.info("Supervisor %s stopped.", self.node)
        return self.exit_code

    def _after_exit(self, slot: int, code: int | None) -> None:
        if self.stopping or code == EXIT_SHUTDOWN:
            return
        if code == EXIT_CONFIG:
            self.exit_code = EXIT_CONFIG
            self._stop()
            return
        if code not in (EXIT_RECYCLE, EXIT_REPLACE):
            quick = time.monotonic() - self.started_at[slot] < QUICK_DEATH_SECONDS
            self.quick_deaths = self.quick_deaths + 1 if quick else 0
            if self.quick_deaths >= QUICK_DEATHS_LIMIT:
                logger.error("Worker processes keep dying at start (exit code %s); giving up.", code)
                self.exit_code = 1
                self._stop()
                return
            logger.error("Worker process in slot %d died (exit code %s); starting another.", slot, code)
            time.sleep(RESPAWN_BACKOFF_SECONDS)
        self.spawn(slot)

    def _stop(self, *_):
        if not self.stopping:
            self.stopping = True
            logger.info("Stopping worker processes gracefully...")
            for process in self.children.values():
                _signal(process, signal.SIGTERM)

    def _restart(self, *_):
        self.restart_requested = True


def _signal(process: multiprocessing.Process, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except (ProcessLookupError, TypeError):
        pass


def run_worker(options: WorkerOptions) -> int:
    return Supervisor(options).run()
