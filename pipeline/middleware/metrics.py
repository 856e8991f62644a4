"""Worker Prometheus metrics: Dramatiq's own middleware, under our supervisor.

Dramatiq's ``Prometheus`` middleware counts messages in every worker process
into prometheus_client's multiprocess files, and expects the ``dramatiq``
CLI to fork its exposition server (the middleware's ``forks``). Our
supervisor (:mod:`pipeline.worker`) forks the worker processes itself and
never runs ``forks``, so this module supplies the two halves:

* :func:`worker_metrics_middleware` (in each worker process) returns the
  middleware, with its files in this supervisor's own directory;
* :func:`worker_metrics_server` (in the supervisor, around its run) wipes
  that directory, binds the port (a port in use is a ConfigError at start,
  not a silent child death) and forks one exposition process that serves
  every worker process's metrics summed.

Dramatiq reads its settings from ``dramatiq_prom_host`` / ``dramatiq_prom_port``
/ ``dramatiq_prom_db`` once, when ``dramatiq.middleware.prometheus`` is first
imported; we set those variables (children inherit them) and the module's
constants, so the import order does not matter. The directory is keyed by
port: two supervisors on one host need two ports anyway, and never share files.

Worker processes come and go (``CLAW_MAX_TASKS_PER_CHILD``, crashes, pool
restarts), and prometheus_client keeps one set of files per process id.
Before each scrape the server folds the counters and histograms of dead
processes into one archive file and drops their gauges, so totals survive
recycling while the file count (and scrape time) stays bounded, and a
process killed mid-task does not leave "in progress" stuck above zero.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator, Optional

from pipeline.errors import ConfigError
from pipeline.settings import Settings

logger = logging.getLogger("pipeline.metrics")

HOST = "0.0.0.0"
_FILE = re.compile(r"^(?P<kind>[a-z]+(?:_[a-z]+)?)_(?P<pid>\d+)\.db$")
ARCHIVE_PID = "archive"


def metrics_dir(settings: Settings) -> str:
    return os.path.join(tempfile.gettempdir(), f"claw-worker-metrics-{settings.worker_metrics_port}")


def _configure(settings: Settings) -> str:
    """Point Dramatiq's middleware and prometheus_client at this supervisor's directory."""
    path = metrics_dir(settings)
    os.makedirs(path, exist_ok=True)
    values = {"dramatiq_prom_db": path, "dramatiq_prom_host": HOST,
              "dramatiq_prom_port": str(settings.worker_metrics_port), "PROMETHEUS_MULTIPROC_DIR": path}
    os.environ.update(values)
    from dramatiq.middleware import prometheus  # reads the variables above when first imported

    prometheus.DB_PATH, prometheus.HTTP_HOST, prometheus.HTTP_PORT = path, HOST, settings.worker_metrics_port
    return path


def worker_metrics_middleware(settings: Settings):
    """Dramatiq's Prometheus middleware for one worker process, or None when metrics are off."""
    if not settings.worker_metrics_port:
        return None
    _configure(settings)
    from prometheus_client import values  # after _configure: it reads PROMETHEUS_MULTIPROC_DIR when first imported

    # prometheus_client picks in-memory or file-backed values when it is first
    # imported; if anything imported it before the variable was set, switch now,
    # before the middleware creates its metrics.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    from dramatiq.middleware.prometheus import Prometheus  # after the switch above, which its metrics need

    return Prometheus()


@contextlib.contextmanager
def worker_metrics_server(settings: Settings) -> Iterator[Optional[multiprocessing.Process]]:
    """Serve the worker processes' metrics on ``settings.worker_metrics_port`` while the block runs."""
    if not settings.worker_metrics_port:
        yield None
        return
    try:
        server = _Exporter(settings.worker_metrics_port, metrics_dir(settings))
    except OSError as exc:
        raise ConfigError(f"CLAW_WORKER_METRICS_PORT: cannot listen on port {settings.worker_metrics_port} ({exc.strerror})") from None
    path = _configure(settings)
    for stale in glob.glob(os.path.join(path, "*.db")):  # an earlier run's counts would be summed in
        os.remove(stale)
    process = multiprocessing.get_context("fork").Process(target=_serve, args=(server,), name="claw-worker-metrics",
                                                           daemon=True)
    process.start()
    server.socket.close()  # the child serves it; worker processes forked later must not hold it
    logger.info("Worker metrics on http://%s:%d/metrics", HOST, settings.worker_metrics_port)
    try:
        yield process
    finally:
        process.terminate()
        process.join(5)
        shutil.rmtree(path, ignore_errors=True)  # every worker process has exited by now


class _Exporter(HTTPServer):
    """The exposition server; it exits when its supervisor is gone, even one killed with SIGKILL,
    so a restarted supervisor never finds the port still held by an orphan."""

    def __init__(self, port: int, path: str):
        super().__init__((HOST, port), _Handler)
        self.metrics_dir = path
        self.supervisor = os.getpid()

    def service_actions(self) -> None:
        if os.getppid() != self.supervisor:
            os._exit(0)


def _serve(server: _Exporter) -> None:
    """Serve until the supervisor terminates us (or dies): Ctrl-C and SIGHUP reach the whole
    process group, and the supervisor, not they, decides when its metrics stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    server.serve_forever(poll_interval=1.0)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # in the exposition process,
        from prometheus_client.multiprocess import MultiProcessCollector  # after _configure set its directory

        path = self.server.metrics_dir
        compact_dead_processes(path)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        body = generate_latest(registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        logger.debug(format, *args)


def compact_dead_processes(path: str) -> None:
    """Fold dead processes' counters and histograms into the archive; drop their gauges.

    Runs in the single-threaded exposition process, the only writer of the
    archive, and only on files no live process writes.
    """
    from prometheus_client.mmap_dict import MmapedDict  # in the exposition process, after _configure

    for name in sorted(os.listdir(path)):
        match = _FILE.match(name)
        if not match or _alive(int(match["pid"])):
            continue
        kind, source = match["kind"], os.path.join(path, name)
        if kind in ("counter", "histogram"):
            archive = MmapedDict(os.path.join(path, f"{kind}_{ARCHIVE_PID}.db"))
            try:
                for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(source):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, 0.0)
            finally:
                archive.close()
        os.remove(source)  # folded above, or a gauge of a process that no longer exists


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True
