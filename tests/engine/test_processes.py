"""Processes and the wire: settings errors, encoder, idle publishers."""

import gzip
import logging
import subprocess
import sys
import time

import pytest

from pipeline import client
from pipeline.encoder import CompressedJSONEncoder
from tests.conftest import ROOT, wait_for_state


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("CLAW_BROKER_URL", "http://nope", "CLAW_BROKER_URL: Value error, must start with amqp://"),
        ("CLAW_REDIS_URL", "redis://127.0.0.1:1/0", "CLAW_REDIS_URL: Redis at redis://127.0.0.1:1/0 does not answer"),
        ("CLAW_BROKER_URL", "amqp://guest:secretpw@127.0.0.1:1/%2F", "CLAW_BROKER_URL: RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F does not answer"),
        ("CLAW_WORKER_THREADS", "0", "CLAW_WORKER_THREADS: Input should be greater than or equal to 1"),
        ("CLAW_ACTOR_OVERRIDES", '{"nope": {}}', "CLAW_ACTOR_OVERRIDES: unknown actor(s) nope"),
    ],
)
def test_bad_settings_stop_the_worker_with_one_line_and_exit_code_2(env, variable, value, expected):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "worker"], env={**env, variable: value}, cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "secretpw" not in result.stderr


def test_cli_reports_unknown_actor_and_bad_json_in_one_line(env):
    for args in (["submit", "no_such_actor"], ["submit", "echo", "--kwargs", "{bad"], ["status", "missing-id"]):
        result = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_repr_and_str_of_the_settings_never_show_a_token_or_a_password(caplog):
    from pipeline.settings import load_settings

    secrets = ("tok3n-" + "q" * 40, "rabbitpw", "redispw", "mgmtpw", "sentinelpw")
    settings = load_settings(
        api_tokens=f"ops:{secrets[0]}:admin",
        broker_url=f"amqp://claw:{secrets[1]}@a:5672/x;amqp://claw:{secrets[1]}@b:5672/x",
        redis_url=f"redis+sentinel://:{secrets[2]}@s1:26379,s2:26379/claw/0?sentinel_password={secrets[4]}",
        rabbitmq_management_url=f"http://claw:{secrets[3]}@a:15672",
    )
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s %r", settings, settings)
    for text in (repr(settings), str(settings), caplog.text, f"{settings!r}"):
        assert not [secret for secret in secrets if secret in text], text
        assert "amqp://claw:***@b:5672/x" in text and "sentinel_password=***" in text


def test_encoder_compresses_only_above_the_threshold_and_reads_both():
    encoder = CompressedJSONEncoder(threshold=100)
    small = {"message_id": "1", "actor_name": "a", "queue_name": "q", "v": "x"}
    large = {**small, "v": "字" * 500}
    assert encoder.encode(small).startswith(b"{")
    packed = encoder.encode(large)
    assert packed[:2] == b"\x1f\x8b" and len(packed) < len(gzip.decompress(packed))
    assert encoder.decode(packed) == large and encoder.decode(encoder.encode(small)) == small


def test_idle_publisher_enqueues_on_the_first_try_after_the_broker_heartbeat(settings, engine, start_worker, caplog):
    from pipeline.engine import make_engine, set_engine

    quick = make_engine(settings.model_copy(update={"broker_url": settings.broker_url + "?heartbeat=2"}))
    set_engine(quick)
    start_worker()
    assert wait_for_state(quick, client.submit("echo", kwargs={"value": 1}, engine=quick), "SUCCESS")
    time.sleep(7)  # > 2 missed heartbeats: RabbitMQ has dropped an unattended connection by now
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        task_id = client.submit("echo", kwargs={"value": 2}, engine=quick)
    assert wait_for_state(quick, task_id, "SUCCESS")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if "Retrying enqueue" in r.getMessage()]
    quick.close()
