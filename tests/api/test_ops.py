"""Health, readiness, Prometheus metrics and the self-hosted docs page."""

import re

from pipeline import client
from tests.api.conftest import QUEUE


def test_health_and_ready_need_no_token(api):
    assert api.get("/health", role=None).json == {"status": "ok", "checks": {}}
    assert api.get("/ready", role=None).json == {"status": "ready", "checks": {"redis": "ok", "rabbitmq": "ok"}}


def test_ready_names_each_service_that_does_not_answer(make_api, api_settings):
    down = api_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0",
                                           "broker_url": "amqp://guest:guest@127.0.0.1:1/%2F"})
    result = make_api(settings=down).get("/ready", role=None)
    assert result.status_code == 503 and result.headers["Retry-After"]
    assert result.json["error"]["fields"].keys() == {"redis", "rabbitmq"}
    assert make_api(settings=down).get("/health", role=None).status_code == 200


def test_metrics_expose_tasks_queues_workers_and_requests_by_route_template(api, engine):
    task_id = client.submit("echo")
    api.get(f"/api/v1/tasks/status/{task_id}")
    api.get("/api/v1/tasks/list", params={"limit": "999"})
    result = api.get("/metrics")
    assert result.headers["content-type"].startswith("text/plain")
    text = result.text
    assert 'claw_tasks{state="PENDING"} 1.0' in text
    assert 'claw_tasks_by_actor{actor="echo",state="PENDING"} 1.0' in text
    assert "claw_workers_online 0.0" in text and "claw_broker_up 1.0" in text
    assert f'claw_queue_messages{{kind="ready",queue="{QUEUE}"}}' in text
    assert 'claw_api_requests_total{method="GET",route="/api/v1/tasks/status/{task_id}",status="200"} 1.0' in text
    assert 'route="/api/v1/tasks/list",status="400"' in text
    assert 'claw_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/tasks/status/{task_id}"' in text
    assert task_id not in text  # labels are templates, never raw paths


def test_docs_page_is_served_locally_without_any_cdn(api):
    page = api.get("/docs", role=None)
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources)
    for source in sources:
        asset = api.get(source, role=None)
        assert asset.status_code == 200 and len(asset.content) > 100
    assert api.get("/docs/assets/swagger-ui-bundle.js", role=None).headers["content-type"] == "application/javascript"
    assert api.get("/docs/assets/index.html", role=None).status_code == 404
    assert api.get("/openapi.json", role=None).status_code == 200  # public: the page loads it before any token
