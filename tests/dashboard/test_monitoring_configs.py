"""Prometheus and Grafana configs: they scrape what exists and query metrics that are really exported."""

from __future__ import annotations

import json
import re

import yaml

from tests.conftest import ROOT
from tests.dashboard.conftest import TOKENS
from tests.app_client import AppClient

INFRA = ROOT / "infra"
METRIC = re.compile(r"\b((?:claw|dramatiq)_[a-z_]+)\b")


def dashboard_metrics(prefix: str) -> set[str]:
    """Metric names the Grafana dashboard's queries use (with their _total/_bucket suffix)."""
    dashboard = json.loads((INFRA / "grafana" / "claw-pipeline.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [dashboard["templating"]["list"][0]["definition"]]
    return {name for expr in exprs for name in METRIC.findall(expr) if name.startswith(prefix)}


def test_prometheus_scrapes_the_api_with_a_token_file_and_every_worker_service():
    config = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["api"]
    assert api["metrics_path"] == "/metrics" and api["static_configs"][0]["targets"] == ["api:8000"]
    assert api["authorization"] == {"type": "Bearer", "credentials_file": "/etc/prometheus/api-token"}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    workers = {name for name, service in compose["services"].items()
               if service.get("command", [None])[0] == "worker"}
    discovery = jobs["workers"]["dns_sd_configs"][0]
    assert set(discovery["names"]) == workers
    assert discovery["port"] == int(compose["x-app"]["environment"]["CLAW_WORKER_METRICS_PORT"])


def test_grafana_provisioning_points_at_the_dashboard_and_its_datasource():
    datasource = yaml.safe_load((INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    provider = yaml.safe_load((INFRA / "grafana" / "provisioning" / "dashboards" / "claw-pipeline.yml").read_text())
    dashboard = json.loads((INFRA / "grafana" / "claw-pipeline.json").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel} == {uid}
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert [panel["id"] for panel in dashboard["panels"]] == list(range(1, len(dashboard["panels"]) + 1))


def test_every_api_metric_the_grafana_dashboard_queries_is_exported_by_the_api(app):
    client = AppClient(app)
    client.simulate_get("/health")  # so the request counters have a sample
    response = client.simulate_get("/metrics", headers={"Authorization": f"Bearer {TOKENS['read']}"})
    assert response.status_code == 200
    exported = {line.split("{")[0].split(" ")[0] for line in response.text.splitlines() if line and not line.startswith("#")}
    wanted = dashboard_metrics("claw_")
    assert wanted and wanted <= exported, f"not exported: {sorted(wanted - exported)}"
