"""Raw Dramatiq 2 for the benchmark: the same RabbitMQ settings as claw-pipeline
(max priority 9, publisher confirms), Dramatiq's default middleware, and the
Results middleware only so the latency test can see completion."""

import os

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.encoder import JSONEncoder
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from bench.common import BROKER_URL, QUEUE_PREFIX

REDIS_URL = os.environ.get("BENCH_RESULTS_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = QUEUE_PREFIX + "raw"

# An explicit encoder: the benchmark process also hosts claw-pipeline, whose
# engine installs its own (compatible) global encoder for messages.
backend = RedisBackend(client=redis.Redis.from_url(REDIS_URL), encoder=JSONEncoder())
broker = RabbitmqBroker(url=BROKER_URL, max_priority=9, confirm_delivery=True)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def noop(i=0):
    return None


@dramatiq.actor(queue_name=QUEUE, store_results=True)
def noop_result(i=0):
    return i
