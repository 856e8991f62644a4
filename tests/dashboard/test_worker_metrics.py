"""The worker's Prometheus exporter: Dramatiq's metrics from every process, summed, across recycling."""

from __future__ import annotations

import os
import shutil
import signal
import socket

import requests
from prometheus_client.parser import text_string_to_metric_families

from pipeline import client
from pipeline.middleware.metrics import metrics_dir
from pipeline.settings import load_settings
from tests.conftest import wait_for_state, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted labels (pid aside): value summed}} from the exporter."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            bucket = samples.setdefault(sample.name, {})
            bucket[labels] = bucket.get(labels, 0.0) + sample.value
    return samples


def by_actor(samples: dict[str, dict[tuple, float]], name: str, actor: str) -> float:
    return sum(value for labels, value in samples.get(name, {}).items() if ("actor_name", actor) in labels)


def test_worker_exports_dramatiq_metrics_summed_over_its_processes_and_recycling(engine, start_worker):
    port = free_port()
    start_worker("--processes", "2", extra_env={"CLAW_WORKER_METRICS_PORT": str(port), "CLAW_MAX_TASKS_PER_CHILD": "3"})
    done = [client.submit("echo", kwargs={"value": i}) for i in range(10)]
    failed = client.submit("always_fails", kwargs={"message": "counted"})  # max_retries=2: three attempts
    for task_id in done:
        wait_for_state(engine, task_id, "SUCCESS")
    wait_for_state(engine, failed, "FAILURE")

    def settled():
        samples = scrape(port)
        return samples if by_actor(samples, "dramatiq_messages_total", "always_fails") == 3 else None

    samples = wait_until(settled, 10, interval=0.3, message="the failed task's three attempts to be counted")
    assert by_actor(samples, "dramatiq_messages_total", "echo") == 10  # recycled processes' counts are kept
    assert by_actor(samples, "dramatiq_message_errors_total", "always_fails") == 3
    # Dramatiq counts a retry when it goes to the delay queue and again when it comes back from it
    retries = samples["dramatiq_message_retries_total"]
    assert sum(v for labels, v in retries.items() if ("actor_name", "always_fails") in labels
               and not dict(labels)["queue_name"].endswith(".DQ")) == 2
    assert by_actor(samples, "dramatiq_message_rejects_total", "always_fails") == 1
    assert by_actor(samples, "dramatiq_message_duration_milliseconds_count", "echo") == 10
    assert by_actor(samples, "dramatiq_messages_inprogress", "echo") == 0
    from tests.dashboard.test_monitoring_configs import dashboard_metrics

    assert dashboard_metrics("dramatiq_") <= set(samples), "the Grafana dashboard queries a metric workers do not export"

    # A scrape folds the files of the processes dead by then; one recycled after the last scrape is folded
    # by the next, so scrape until every file belongs to a live process or the archive.
    def unfolded():
        scrape(port)
        live = {str(w["pid"]) for w in engine.workers.list()}
        files = os.listdir(metrics_dir(load_settings(worker_metrics_port=port)))
        return sorted(f for f in files if f.rsplit("_", 1)[1].removesuffix(".db") not in live | {"archive"})

    wait_until(lambda: not unfolded(), 10, interval=0.5, message="dead processes' files to be folded")


def test_a_metrics_port_in_use_stops_the_worker_with_one_line(engine, start_worker):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker(extra_env={"CLAW_WORKER_METRICS_PORT": str(port)}, wait=False)
        assert worker.proc.wait(30) == 2
    assert "CLAW_WORKER_METRICS_PORT: cannot listen on port" in worker.output()


def test_the_exporter_goes_away_with_a_killed_supervisor_so_a_restart_gets_the_port(engine, start_worker):
    port = free_port()
    worker = start_worker(extra_env={"CLAW_WORKER_METRICS_PORT": str(port)})
    assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()

    def refused() -> bool:
        try:
            requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
        except requests.ConnectionError:
            return True
        return False

    try:
        wait_until(refused, 10, interval=0.2, message="the orphaned exporter to exit")
    finally:
        worker.kill_group()  # the orphaned worker processes
        shutil.rmtree(metrics_dir(load_settings(worker_metrics_port=port)), ignore_errors=True)  # no supervisor left to
