"""gunicorn settings for the API: ``gunicorn -c infra/gunicorn.conf.py api.wsgi:app``.

gthread workers: requests block on Redis and RabbitMQ, and an SSE stream
holds one thread for its lifetime, so each process serves several requests
with threads. Worker and thread counts come from the validated settings
(CLAW_API_WORKERS, CLAW_API_THREADS); ``claw-pipeline api --bind`` sets the
address; PROMETHEUS_MULTIPROC_DIR aggregates request metrics across workers.
"""

import glob
import os

from pipeline.settings import get_settings

_settings = get_settings()  # already checked by `claw-pipeline api`, which prints one line on error
wsgi_app = "api.wsgi:app"
bind = "127.0.0.1:8000"
workers = _settings.api_workers
worker_class = "gthread"
threads = _settings.api_threads

# A gthread worker heartbeats from its main loop, so `timeout` catches a hung
# process, not a long request; SSE streams end by themselves within 10 minutes.
timeout = 30
graceful_timeout = 30
keepalive = 5

# Workers are not replaced after N requests (gunicorn's default, max_requests = 0):
# the API keeps no per-request state to leak, and a replaced worker drops the
# keep-alive connections it holds, which clients under load saw as reset
# connections (wrk counted them in every benchmark run).

# Access log without headers (the Authorization header, the token, is never
# written), in a line of its own making: api/access_log.py.
accesslog = "-"
errorlog = "-"
logger_class = "api.access_log.AccessLogger"

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    """Start request metrics from zero: files left by an earlier run would be summed in."""
    if _metrics_dir:
        os.makedirs(_metrics_dir, exist_ok=True)
        for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
            os.remove(path)


def child_exit(server, worker):
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
