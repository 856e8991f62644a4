"""docker-compose.yml is valid and complete, checked without a Docker engine.

Debian's ``docker-compose`` resolves and validates the file (``config``),
and the compose-spec JSON schema that package ships validates it again.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = {"api", "worker", "worker-ai", "worker-knowledge", "scheduler"}
ALL_SERVICES = APP_SERVICES | {"rabbitmq", "redis", "postgres", "prometheus", "grafana"}

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed (make test installs it)")


def example_env() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--profile", "monitoring", "config"],
        env={"PATH": "/usr/bin:/bin", **env}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_docker_compose_config_accepts_the_file_with_the_example_env():
    result = compose_config(example_env())
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == ALL_SERVICES


def test_file_matches_the_compose_spec_schema():
    schema_dir = subprocess.run(
        ["/usr/bin/python3", "-c", "import compose.config, os; print(os.path.dirname(compose.config.__file__))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    schema = json.loads((Path(schema_dir) / "compose_spec.json").read_text())
    jsonschema.validate(yaml.safe_load(COMPOSE.read_text()), schema)


def test_a_missing_secret_stops_compose_with_its_name():
    env = example_env()
    del env["REDIS_PASSWORD"]
    result = compose_config(env)
    assert result.returncode != 0 and "REDIS_PASSWORD" in result.stderr


def test_every_service_has_health_check_restart_policy_and_limits():
    services = yaml.safe_load(compose_config(example_env()).stdout)["services"]
    for name, service in services.items():
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name
        assert service["deploy"]["resources"]["limits"], name
    for name in APP_SERVICES:
        assert {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()} == {
            "rabbitmq": "service_healthy", "redis": "service_healthy", "postgres": "service_healthy"
        }, name
        assert services[name]["build"]["dockerfile"] == "infra/Dockerfile"
    assert services["scheduler"]["deploy"]["replicas"] == 2
    assert services["worker-ai"]["command"][-1] == "ai_high_priority"
    assert services["worker-knowledge"]["command"][2] == "knowledge_default"
    assert all(services[w]["stop_grace_period"] == "10m" for w in ("worker", "worker-ai", "worker-knowledge"))
    assert services["rabbitmq"]["image"].endswith("-management")
    assert "pgvector" in services["postgres"]["image"]
    assert services["prometheus"]["profiles"] == ["monitoring"] == services["grafana"]["profiles"]


def test_no_secret_is_written_in_the_file_and_every_variable_is_documented():
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    documented = set(example_env())
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if re.search(r"(PASSWORD|PASS|TOKENS?|SECRET|KEY)$", key):
            assert value.strip().startswith("${"), line
    assert not re.search(r"://[^$\s/]+:[^$\s@]+@", text), "a URL with literal credentials"
