"""docker-compose.yml and its clustered overlay docker-compose.ha.yml are valid and complete,
checked without a Docker engine.

Debian's ``docker-compose`` resolves and validates the files (``config``),
and the compose-spec JSON schema that package ships validates them again.
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
COMPOSE_HA = ROOT / "docker-compose.ha.yml"
HA_SERVICES = {"rabbitmq-2", "rabbitmq-3", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
APP_SERVICES = {"api", "worker", "worker-ai", "worker-knowledge", "scheduler"}
#: Run once and exit (they have no health check and are not restarted).
ONE_SHOT = {"rabbitmq-setup"}
ALL_SERVICES = APP_SERVICES | ONE_SHOT | {"rabbitmq", "redis", "postgres", "prometheus", "grafana"}

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed (make test installs it)")


def example_env() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def compose_config(env: dict[str, str], *overlays: Path) -> subprocess.CompletedProcess:
    files = [argument for path in (COMPOSE, *overlays) for argument in ("-f", str(path))]
    return subprocess.run(
        ["docker-compose", *files, "--profile", "monitoring", "config"],
        env={"PATH": "/usr/bin:/bin", **env}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_docker_compose_config_accepts_the_file_with_the_example_env():
    result = compose_config(example_env())
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == ALL_SERVICES


def compose_schema() -> dict:
    schema_dir = subprocess.run(
        ["/usr/bin/python3", "-c", "import compose.config, os; print(os.path.dirname(compose.config.__file__))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    return json.loads((Path(schema_dir) / "compose_spec.json").read_text())


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_HA], ids=lambda p: p.name)
def test_file_matches_the_compose_spec_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), compose_schema())


def test_a_missing_secret_stops_compose_with_its_name():
    env = example_env()
    del env["REDIS_PASSWORD"]
    result = compose_config(env)
    assert result.returncode != 0 and "REDIS_PASSWORD" in result.stderr


def test_every_service_has_health_check_restart_policy_and_limits():
    services = yaml.safe_load(compose_config(example_env()).stdout)["services"]
    for name, service in services.items():
        assert service["deploy"]["resources"]["limits"], name
        if name in ONE_SHOT:
            assert service["restart"] == "no" and "healthcheck" not in service, name
            continue
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name
    for name in APP_SERVICES:
        assert {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()} == {
            "rabbitmq": "service_healthy", "redis": "service_healthy", "postgres": "service_healthy",
            "rabbitmq-setup": "service_completed_successfully",
        }, name
        assert services[name]["build"]["dockerfile"] == "infra/Dockerfile"
    assert services["scheduler"]["deploy"]["replicas"] == 2
    assert services["worker-ai"]["command"][-1] == "ai_high_priority"
    assert services["worker-knowledge"]["command"][2] == "knowledge_default"
    assert all(services[w]["stop_grace_period"] == "10m" for w in ("worker", "worker-ai", "worker-knowledge"))
    assert services["rabbitmq"]["image"].endswith("-management")
    assert "pgvector" in services["postgres"]["image"]
    assert services["prometheus"]["profiles"] == ["monitoring"] == services["grafana"]["profiles"]


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_HA], ids=lambda p: p.name)
def test_no_secret_is_written_in_the_file_and_every_variable_is_documented(path):
    text = path.read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    documented = set(example_env())
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"
    for line in text.splitlines():
        key, colon, value = line.strip().partition(":")  # YAML "KEY: value" lines (not the Sentinel's config text)
        if colon and re.search(r"(PASSWORD|PASS|TOKENS?|SECRET|KEY|COOKIE)$", key):
            assert value.strip().startswith("${"), line
    assert not re.search(r"://[^$\s/]+:[^$\s@]+@", text), "a URL with literal credentials"


def test_the_ha_overlay_clusters_rabbitmq_and_puts_redis_under_sentinel_with_urls_the_engine_accepts():
    result = compose_config(example_env(), COMPOSE_HA)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == ALL_SERVICES | HA_SERVICES
    for name in HA_SERVICES:
        assert "healthcheck" in services[name] and services[name]["restart"] == "unless-stopped", name
        assert services[name]["deploy"]["resources"]["limits"], name
    nodes = {"rabbitmq", "rabbitmq-2", "rabbitmq-3"}
    assert {services[n]["hostname"] for n in nodes} == nodes
    assert len({services[n]["environment"]["RABBITMQ_ERLANG_COOKIE"] for n in nodes}) == 1
    for name in nodes:
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services[name]["volumes"]}
        assert mounts["/etc/rabbitmq/definitions.json"].endswith("infra/rabbitmq/definitions.ha.json"), name
        assert mounts["/etc/rabbitmq/conf.d/30-cluster.conf"].endswith("infra/rabbitmq/cluster.conf"), name
    cluster_conf = (ROOT / "infra" / "rabbitmq" / "cluster.conf").read_text()
    assert {f"rabbit@{n}" for n in nodes} == set(re.findall(r"classic_config\.nodes\.\d+ = (\S+)", cluster_conf))
    assert "--replicaof redis 6379" in services["redis-replica"]["command"][-1]
    assert "sentinel monitor claw redis 6379 2" in services["sentinel-1"]["command"][-1]

    from pipeline.amqp import node_urls
    from pipeline.redis_url import parse_sentinel_url
    from pipeline.settings import load_settings

    for name in APP_SERVICES:
        env = services[name]["environment"]
        settings = load_settings(broker_url=env["CLAW_BROKER_URL"], redis_url=env["CLAW_REDIS_URL"])
        assert {url.split("@")[1].split(":")[0] for url in node_urls(settings.broker_url)} == nodes, name
        target = parse_sentinel_url(settings.redis_url)
        assert {host for host, _ in target.sentinels} == {"sentinel-1", "sentinel-2", "sentinel-3"}, name
        assert target.service == "claw" and target.password == target.sentinel_password == example_env()["REDIS_PASSWORD"]
        assert settings.wait_replicas == 1
        assert {"rabbitmq-2", "rabbitmq-3", "sentinel-1", "sentinel-2", "sentinel-3"} <= set(services[name]["depends_on"])


def test_the_application_connects_with_least_privilege_users_not_the_administrators():
    env = example_env()
    services = yaml.safe_load(compose_config(env).stdout)["services"]
    for name in APP_SERVICES:
        app_env = services[name]["environment"]
        for variable in ("CLAW_BROKER_URL", "CLAW_RABBITMQ_MANAGEMENT_URL"):
            user = app_env[variable].split("://")[1].split(":")[0]
            assert user == env["RABBITMQ_APP_USER"] != env["RABBITMQ_USER"], (name, variable)
            assert env["RABBITMQ_PASSWORD"] not in app_env[variable], (name, variable)
        database_user = app_env["CLAW_DATABASE_URL"].split("://")[1].split(":")[0]
        assert database_user == env["POSTGRES_APP_USER"] != services["postgres"]["environment"]["POSTGRES_USER"]
        assert env["POSTGRES_PASSWORD"] not in app_env["CLAW_DATABASE_URL"], name
        assert not {"RABBITMQ_PASSWORD", "POSTGRES_PASSWORD"} & set(app_env), name
    setup = services["rabbitmq-setup"]
    assert setup["entrypoint"] == ["python", "/claw/app_user.py"]
    assert setup["volumes"][0].split(":")[0].endswith("infra/rabbitmq/app_user.py")
    postgres_mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services["postgres"]["volumes"]}
    assert postgres_mounts["/docker-entrypoint-initdb.d/10-app-user.sh"].endswith("infra/postgres/initdb-app-user.sh")
    assert postgres_mounts["/claw/app-user.sql"].endswith("infra/postgres/app-user.sql")
    ha = yaml.safe_load(compose_config(env, COMPOSE_HA).stdout)["services"]
    for name in APP_SERVICES:
        assert ha[name]["environment"]["CLAW_BROKER_URL"].count(f"{env['RABBITMQ_APP_USER']}:") == 3, name
