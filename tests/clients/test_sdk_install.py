"""The SDK installs alone: a fresh virtualenv gets clients/python and its three dependencies, nothing of the
engine, and from there submits a task to the real API and waits for it on the event stream."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests import sample_tasks
from tests.api.conftest import TOKENS
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(240)

SCRIPT = textwrap.dedent("""
    import json, sys
    import claw_client
    from claw_client import Client
    with Client(sys.argv[1], sys.argv[2]) as claw:
        task_id = claw.submit_bulk(tasks=[{"actor": "echo", "kwargs": {"value": "from a venv"}}]).task_ids[0]
        record = claw.wait(task_id, timeout=60)
    engine = [m for m in sys.modules if m.split(".")[0] in ("pipeline", "api", "dramatiq", "pika", "redis", "falcon")]
    print(json.dumps({"state": record.state, "result": record.result, "engine_modules": engine,
                      "from": claw_client.__file__}))
""")


def test_the_sdk_installs_alone_into_a_fresh_venv_and_waits_for_a_task(tmp_path, server, start_worker):
    start_worker(queues=(sample_tasks.QUEUE,))
    source = tmp_path / "src"
    shutil.copytree(ROOT / "clients" / "python", source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", str(source)], check=True, capture_output=True, timeout=180)
    installed = subprocess.run([python, "-m", "pip", "list", "--format=json"], check=True, capture_output=True,
                               text=True).stdout
    names = {package["name"].lower() for package in json.loads(installed)}
    assert "claw-client" in names and not names & {"claw-pipeline", "dramatiq", "pika", "redis", "falcon"}
    answer = subprocess.run([python, "-c", SCRIPT, server.url, TOKENS["submit"]], cwd=tmp_path, capture_output=True,
                            text=True, timeout=90)
    assert answer.returncode == 0, answer.stderr
    outcome = json.loads(answer.stdout)
    assert outcome["state"] == "SUCCESS" and outcome["result"]["value"] == "from a venv"
    assert outcome["engine_modules"] == [] and outcome["from"].startswith(str(tmp_path / "venv"))
