"""``/metrics``: Prometheus text for the API and the engine.

Task counts, queue depths and workers online are read when scraped (from
the store's counters and the cached queue stats), so they are right whichever
process answers. Request counts and latencies are per process; with several
API processes ``claw-pipeline api`` sets ``PROMETHEUS_MULTIPROC_DIR`` (under
``CLAW_DATA_DIR`` unless given; the gunicorn config wipes it at start and
cleans up after dead workers) so that every scrape sums them all.
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from api.auth import Access
from api.blocking import run_blocking
from api.resources import EngineProvider, known_actors, known_queues
from api.validation import Endpoint
from pipeline.errors import BrokerUnavailable
from pipeline.queues import QueueStatsCache

LABELS = ("route", "method", "status")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
QUEUE_KINDS = ("ready", "unacked", "delayed", "dead_lettered")


class EngineCollector:
    """Gauges computed at scrape time: O(1) Redis round trips, cached RabbitMQ stats."""

    def __init__(self, engine: EngineProvider, queue_stats: QueueStatsCache):
        self.engine = engine
        self.queue_stats = queue_stats

    def describe(self) -> list:
        return []  # nothing to check at registration: keeps building the app free of I/O

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self.engine()
        actors, queues = known_actors(), known_queues(engine)
        counts = engine.store.count_by_state(actors, [])
        tasks = GaugeMetricFamily("claw_tasks", "Stored task records per state", labels=["state"])
        for state, count in counts["states"].items():
            tasks.add_metric([state], count)
        by_actor = GaugeMetricFamily("claw_tasks_by_actor", "Stored task records per actor and state",
                                     labels=["actor", "state"])
        for actor, states in counts["actors"].items():
            for state, count in states.items():
                by_actor.add_metric([actor, state], count)
        workers = GaugeMetricFamily("claw_workers_online", "Live worker processes")
        workers.add_metric([], engine.workers.count())
        yield from (tasks, by_actor, workers)
        yield from self._queues(queues)

    def _queues(self, queues: list[str]) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("claw_broker_up", "1 when RabbitMQ answered the last queue-stats request")
        try:
            stats = self.queue_stats.get(queues)
        except BrokerUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        messages = GaugeMetricFamily("claw_queue_messages", "Messages per queue and kind", labels=["queue", "kind"])
        consumers = GaugeMetricFamily("claw_queue_consumers", "Consumers per queue", labels=["queue"])
        for queue, values in stats.items():
            for kind in QUEUE_KINDS:
                if values[kind] is not None:
                    messages.add_metric([queue, kind], values[kind])
            consumers.add_metric([queue], values["consumers"])
        yield from (up, messages, consumers)


class ApiMetrics:
    """Per-request metrics, labelled by route template (never the raw path) so cardinality stays bounded."""

    def __init__(self, engine: EngineProvider, queue_stats: QueueStatsCache):
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        own = None if self.multiprocess else self.registry  # multiprocess values live in files, not a registry
        self.requests = Counter("claw_api_requests", "API requests", LABELS, registry=own)
        self.latency = Histogram("claw_api_request_duration_seconds", "API request latency (to the first byte)",
                                 LABELS, registry=own, buckets=BUCKETS)
        self.engine_collector = EngineCollector(engine, queue_stats)
        if not self.multiprocess:
            self.registry.register(self.engine_collector)

    def exposition(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.engine_collector)
        return generate_latest(registry)

    # Falcon middleware hooks
    async def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    async def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        method = req.method if req.method in falcon.COMBINED_METHODS else "OTHER"
        labels = (req.uri_template or "unmatched", method, str(resp.status_code))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(time.perf_counter() - req.context.started)


class MetricsResource:
    access = {"GET": Access("metrics:read", users=False)}
    endpoints = {"GET": Endpoint("Prometheus metrics", "health", operation_id="getMetrics", media_type=CONTENT_TYPE_LATEST.split(";")[0])}

    def __init__(self, metrics: ApiMetrics):
        self.metrics = metrics

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = await run_blocking(self.metrics.exposition)
