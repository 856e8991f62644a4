"""What the image runs: the wheel, installed with its dependencies in a fresh virtualenv outside the checkout.

The wheel is built from a copy of exactly what ``infra/Dockerfile`` copies,
installed without the ``[knowledge]`` extra (the light install), and its
``claw-pipeline api``, ``worker`` and ``scheduler`` run from another working
directory against the local RabbitMQ and Redis until a task submitted over
HTTP has run. Nothing may be read from, or written into, the checkout or
site-packages: runtime data goes to ``CLAW_DATA_DIR`` (``./var``).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import QUEUE_PREFIX, ROOT, Subprocess, free_port, wait_until

pytestmark = pytest.mark.timeout(900)

TOKEN = f"packaged-{uuid.uuid4().hex}"
#: What infra/Dockerfile copies into its build stage.
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "pipeline", "api", "scheduler")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtualenv with the wheel and its dependencies."""
    work = tmp_path_factory.mktemp("packaged")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--wheel-dir", str(work / "dist"), str(src)])
    (wheel,) = glob.glob(str(work / "dist" / "claw_pipeline-*.whl"))
    run([sys.executable, "-m", "venv", str(work / "venv")])
    run([str(work / "venv" / "bin" / "pip"), "install", "-q", wheel])
    return work / "venv" / "bin"


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_installed_wheel_runs_api_worker_and_scheduler_from_elsewhere_and_finishes_a_task(
        installed, namespace, engine, tmp_path):
    claw = str(installed / "claw-pipeline")
    workdir = tmp_path / "somewhere"
    workdir.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLAW_", "PYTHON", "VIRTUAL_ENV"))}
    env = {**clean, "CLAW_NAMESPACE": namespace, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX, "CLAW_API_TOKENS": f"{TOKEN}:admin",
           "CLAW_REDIS_URL": engine.settings.redis_url, "CLAW_BROKER_URL": engine.settings.broker_url}
    assert run([claw, "--version"], cwd=workdir, env=env).stdout.startswith("claw-pipeline ")
    missing = subprocess.run([claw, "kb", "search", "base", "question"], cwd=workdir, env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert 'pip install "claw-pipeline[knowledge]"' in missing.stderr

    port = free_port()
    processes = [
        Subprocess([claw, "api", "--bind", f"127.0.0.1:{port}"], env, "packaged-api", cwd=workdir),
        Subprocess([claw, "worker", "--queues", "notification_default", "--processes", "1"], env, "packaged-worker",
                   cwd=workdir),
        Subprocess([claw, "scheduler"], env, "packaged-scheduler", cwd=workdir),
    ]
    api = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        wait_until(lambda: _answers(f"{api}/ready"), 60, message=f"the packaged API\n{processes[0].output()[-2000:]}")
        submitted = requests.post(f"{api}/api/v1/tasks/notifications/send", headers=auth, timeout=10, json={
            "channel": "system", "recipient": "user-1", "subject": "Hello", "body": "from the wheel"})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]
        wait_until(lambda: requests.get(f"{api}/api/v1/tasks/status/{task_id}", headers=auth, timeout=5)
                   .json()["state"] == "SUCCESS", 60, message=f"the task to run\n{processes[1].output()[-2000:]}")
        inbox = requests.get(f"{api}/api/v1/notifications/user-1", headers=auth, timeout=5).json()
        assert [item["title"] for item in inbox["items"]] == ["Hello"]
        knowledge = requests.get(f"{api}/api/v1/knowledge", headers=auth, timeout=5)
        assert knowledge.status_code == 503 and "claw-pipeline[knowledge]" in knowledge.json()["error"]["description"]
        assert "is the leader" in processes[2].output() and all(p.proc.poll() is None for p in processes)
    finally:
        for process in processes:
            process.stop(20)
            process.log.close()
    site_packages = glob.glob(str(installed.parent / "lib" / "python*" / "site-packages"))[0]
    assert not glob.glob(f"{site_packages}/var") and not glob.glob(f"{site_packages}/infra")
    assert (workdir / "var").is_dir() and not list((workdir / "var").glob("api-metrics-*"))  # removed at exit


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
