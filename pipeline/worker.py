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

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import dramatiq

from pipeline.engine import make_engine, make_registry, make_store
from pipeline.middleware.heartbeat import Heartbeat
from pipeline.middleware.metrics import worker_metrics_middleware, worker_metrics_server
from pipeline.middleware.recycle import Recycle
from pipeline.middleware.time_limits import TimeLimits
from pipeline.errors import ConfigError
from pipeline.observability import logs, tracing
from pipeline.settings import Settings, get_settings
from pipeline.state import worker_identity
from pipeline.registry import queue_names

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
    """How a worker process is asked to end, and with which exit code.

    A process leaving to be replaced (recycling, pool restart, a stuck task)
    tells the supervisor at once through *announce*, so its replacement
    starts while it is still finishing its running tasks.
    """

    def __init__(self, announce: Callable[[], None]) -> None:
        self.event = threading.Event()
        self.code = EXIT_SHUTDOWN
        self.stop_timeout_ms: int | None = None
        self.announce = announce

    def request(self, code: int, stop_timeout_ms: int | None = None) -> None:
        if self.event.is_set():
            return
        self.code = code
        self.stop_timeout_ms = stop_timeout_ms
        if code in (EXIT_RECYCLE, EXIT_REPLACE):
            self.announce()
        self.event.set()


def worker_process(node: str, options: WorkerOptions, leaving, supervisor_pid: int) -> None:
    """Body of one worker process; settings problems end it with one line and EXIT_CONFIG."""
    try:
        _serve(node, options, Lifecycle(lambda: leaving.put(os.getpid())), supervisor_pid)
    except ConfigError as exc:
        print(f"claw-pipeline: error: {exc}", file=sys.stderr, flush=True)
        os._exit(EXIT_CONFIG)


def _serve(node: str, options: WorkerOptions, lifecycle: Lifecycle, supervisor_pid: int) -> None:
    """A Dramatiq Worker with the engine's middleware, until told to stop."""
    settings = get_settings()
    signal.signal(signal.SIGTERM, lambda *_: lifecycle.request(EXIT_SHUTDOWN))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; Ctrl-C reaches it too
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, lambda *_: lifecycle.request(EXIT_RECYCLE))
    stop_with_supervisor(supervisor_pid)

    logs.set_worker(worker_identity())
    tracing.setup("worker")  # before the broker: its middleware list includes the task span when tracing is on
    queues = [settings.queue_prefix + q for q in options.queues] if options.queues else queue_names(settings.queue_prefix)
    store, registry = make_store(settings), make_registry(settings)

    def on_blocked(message, others_need_seconds: float) -> None:
        error = {
            "type": "HardTimeLimitExceeded",
            "message": "blocked past its hard time limit (in a C call); the worker process was replaced",
        }
        store.fail(message.message_id, error)
        lifecycle.request(EXIT_REPLACE, int((others_need_seconds + 2) * 1000))

    def on_command(command: str) -> None:
        lifecycle.request(EXIT_RECYCLE if command == "pool_restart" else EXIT_SHUTDOWN)

    middleware = [
        Heartbeat(
            registry, store, worker_id=worker_identity(), node=node, queues=queues, threads=options.threads,
            interval=settings.heartbeat_interval_seconds, on_command=on_command,
        )
    ]
    if settings.worker_metrics_port:
        middleware.append(worker_metrics_middleware(settings))
    if settings.max_tasks_per_child or settings.max_memory_per_child_mib:
        recycle = lambda: lifecycle.request(EXIT_RECYCLE)  # noqa: E731
        middleware.append(Recycle(recycle, settings.max_tasks_per_child, settings.max_memory_per_child_mib))
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
    tracing.shutdown()  # os._exit below skips atexit, where the SDK would export what it still holds
    logging.shutdown()
    os._exit(lifecycle.code)


def stop_with_supervisor(supervisor_pid: int) -> None:
    """Have the kernel send SIGTERM (a graceful stop) when the supervisor dies.

    A worker process outliving a SIGKILLed supervisor would go on consuming
    with nobody left to stop, recycle or replace it. Linux only (prctl); on
    other systems (a developer's macOS) the worker runs without this safeguard.
    """
    if not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """Keeps *processes* worker processes running until told to stop."""

    def __init__(self, options: WorkerOptions):
        self.options = options
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self.context = multiprocessing.get_context("fork")
        #: Worker processes leaving to be replaced put their pid here.
        self.leaving = self.context.SimpleQueue()
        self.children: dict[int, multiprocessing.Process] = {}
        self.started_at: dict[int, float] = {}
        #: Processes already replaced that are finishing their last tasks.
        self.retiring: set[int] = set()
        self.stopping = False
        self.restart_requested = False
        self.quick_deaths = 0
        self.exit_code = 0

    def spawn(self) -> None:
        process = self.context.Process(target=worker_process, args=(self.node, self.options, self.leaving, os.getpid()), name="claw-worker")
        process.start()
        self.children[process.pid] = process
        self.started_at[process.pid] = time.monotonic()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._restart)
        for _ in range(self.options.processes):
            self.spawn()
        logger.info("Supervisor %s started %d worker processes.", self.node, self.options.processes)
        while self.children:
            if self.restart_requested:
                self.restart_requested = False
                for pid in list(self.children):
                    _signal(pid, signal.SIGUSR1)
            self._replace_leaving()
            for pid, process in list(self.children.items()):
                if not process.is_alive():
                    process.join()
                    del self.children[pid]
                    self._after_exit(pid, process.exitcode)
            time.sleep(0.05)
        logger.info("Supervisor %s stopped.", self.node)
        return self.exit_code

    def _replace_leaving(self) -> None:
        while not self.leaving.empty():
            pid = self.leaving.get()
            if pid in self.children and pid not in self.retiring and not self.stopping:
                self.retiring.add(pid)
                self.spawn()

    def _after_exit(self, pid: int, code: int | None) -> None:
        started = self.started_at.pop(pid)
        if pid in self.retiring:
            self.retiring.discard(pid)
            return
        if self.stopping or code == EXIT_SHUTDOWN:
            return
        if code == EXIT_CONFIG:
            self.exit_code = EXIT_CONFIG
            self._stop()
            return
        if code not in (EXIT_RECYCLE, EXIT_REPLACE):
            quick = time.monotonic() - started < QUICK_DEATH_SECONDS
            self.quick_deaths = self.quick_deaths + 1 if quick else 0
            if self.quick_deaths >= QUICK_DEATHS_LIMIT:
                logger.error("Worker processes keep dying at start (exit code %s); giving up.", code)
                self.exit_code = 1
                self._stop()
                return
            logger.error("Worker process %d died (exit code %s); starting another.", pid, code)
            time.sleep(RESPAWN_BACKOFF_SECONDS)
        self.spawn()

    def _stop(self, *_):
        if not self.stopping:
            self.stopping = True
            logger.info("Stopping worker processes gracefully...")
            for pid in self.children:
                _signal(pid, signal.SIGTERM)

    def _restart(self, *_):
        self.restart_requested = True


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def run_worker(options: WorkerOptions) -> int:
    with worker_metrics_server(get_settings()):
        return Supervisor(options).run()
