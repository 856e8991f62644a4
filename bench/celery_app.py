"""Celery 5 for the benchmark: RabbitMQ broker, Redis results, prefork pool."""

import os

from celery import Celery

from bench.common import BROKER_URL, QUEUE_PREFIX

QUEUE = QUEUE_PREFIX + "celery"
app = Celery(
    "bench",
    broker=BROKER_URL.replace("%2F", "/").rstrip("/") + "/",
    backend=os.environ.get("BENCH_RESULTS_REDIS_URL", "redis://127.0.0.1:6379/14"),
)
# Results expire after 10 minutes (Celery's default is a day): a run leaves nothing lasting behind.
app.conf.update(task_default_queue=QUEUE, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True,
                result_expires=600)


@app.task(name="bench.noop")
def noop(i=0):
    return None
