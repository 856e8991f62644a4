"""gunicorn settings for the API: ``gunicorn -c python:api.server.gunicorn_conf api.asgi:app``.

``claw-pipeline api`` runs exactly this. Worker processes (CLAW_API_WORKERS)
each run one event loop (:mod:`api.server.worker`): open event streams and
idle or slow clients hold no thread, and blocking engine calls go to a
thread pool of CLAW_API_THREADS per process. ``--bind`` sets the address.
PROMETHEUS_MULTIPROC_DIR aggregates request metrics across the workers.
"""

import glob
import os
import shutil

from pipeline.settings import get_settings

_settings = get_settings()  # already checked by `claw-pipeline api`, which prints one line on error
wsgi_app = "api.asgi:app"
bind = "127.0.0.1:8000"
workers = _settings.api_workers
worker_class = "api.server.worker.ApiWorker"

# The worker heartbeats from its event loop: a loop stuck for `timeout` seconds
# (a blocking call that escaped the thread pool) gets the process replaced.
timeout = 30
# On SIGTERM, open event streams end at once (their clients reconnect) and
# ordinary requests get this long to finish.
graceful_timeout = 30

# Workers are not replaced after N requests (max_requests = 0): the API keeps
# no per-request state to leak, and a replaced worker drops every connection
# and stream it holds.

accesslog = "-"
errorlog = "-"
if _settings.log_format == "json":
    # gunicorn's own lines (booting, worker exits) and the access log as JSON too: one format per stream.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "pipeline.observability.logs.ContextFilter"}},
        "formatters": {"json": {"()": "pipeline.observability.logs.JsonFormatter"}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"],
                              "stream": "ext://sys.stderr"}},
        "root": {"level": _settings.log_level, "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": _settings.log_level, "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["json"], "propagate": False},
        },
    }

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    """Start request metrics from zero: files left by an earlier run would be summed in."""
    if _metrics_dir:
        os.makedirs(_metrics_dir, exist_ok=True)
        for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
            os.remove(path)


def child_exit(server, worker):
    if _metrics_dir:
        from prometheus_client import multiprocess  # noqa: PLC0415  (only the master uses it, only here)

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory `claw-pipeline api` made for this run (never one the operator set)."""
    if _metrics_dir and os.path.basename(_metrics_dir) == f"api-metrics-{os.getpid()}":
        shutil.rmtree(_metrics_dir, ignore_errors=True)
