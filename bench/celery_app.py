"""Celery 5 for the benchmark: RabbitMQ broker, Redis results, prefork pool."""

import os

from celery import Celery

QUEUE = "bench_celery"
app = Celery(
    "bench",
    broker=os.environ.get("CLAW_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F").replace("%2F", "/").rstrip("/") + "/",
    backend=os.environ.get("BENCH_RESULTS_REDIS_URL", "redis://127.0.0.1:6379/14"),
)
app.conf.update(task_default_queue=QUEUE, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(name="bench.noop")
def noop(i=0):
    return None
