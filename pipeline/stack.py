"""``claw-pipeline run``: the whole local stack as one supervised group.

Starts the API (gunicorn + uvicorn workers), the worker supervisor and the scheduler as child
processes against the local RabbitMQ and Redis, prints where to look, and
stops every child cleanly on Ctrl-C. Meant for development and demos;
production runs each process on its own (see docker-compose.yml).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from pipeline.services import check_services
from pipeline.settings import Settings, redact_url

STOP_TIMEOUT_SECONDS = 30


def token_file(settings: Settings, name: str = "dev-admin-token") -> Path:
    return settings.data_dir / name


def dev_token(settings: Settings, name: str = "dev-admin-token") -> str:
    """A stable development secret (the admin token, the user-token key), generated once and kept in CLAW_DATA_DIR."""
    path = token_file(settings, name)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def run_stack(settings: Settings, bind: str = "127.0.0.1:8000") -> int:
    check_services(settings)
    env = {**os.environ, "CLAW_DATA_DIR": str(settings.data_dir)}  # the children share this one, wherever they run
    token = None
    if not settings.api_tokens and not settings.auth_disabled:
        token = dev_token(settings)
        env["CLAW_API_TOKENS"] = f"dev:{token}:admin"
    if not settings.user_token_keys:  # so that the chat example's backend can mint user tokens
        env["CLAW_USER_TOKEN_KEYS"] = f"dev:{dev_token(settings, 'dev-user-token-key')}"
    cli = [sys.executable, "-m", "pipeline.cli"]
    commands = {
        "api": [*cli, "api", "--bind", bind],
        "worker": [*cli, "worker"],
        "scheduler": [*cli, "scheduler"],
    }
    children = {name: subprocess.Popen(cmd, env=env, start_new_session=True) for name, cmd in commands.items()}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    base = f"http://{bind}"
    if _wait_healthy(base, children["api"]):
        _banner(base, settings, token)
    failed = None
    while not stopping and failed is None:
        failed = next((name for name, proc in children.items() if proc.poll() is not None), None)
        time.sleep(0.2)
    if failed:
        print(f"claw-pipeline: {failed} exited with code {children[failed].returncode}; stopping the stack", file=sys.stderr)
    _stop_all(children)
    return 1 if failed else 0


def _wait_healthy(base: str, api: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and api.poll() is None:
        try:
            if requests.get(f"{base}/health", timeout=1).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


def _banner(base: str, settings: Settings, token: str | None) -> None:
    management = redact_url(settings.rabbitmq_management_url)
    lines = [
        "",
        "claw-pipeline is running (Ctrl-C stops everything)",
        f"  API              {base}/api/v1/tasks/stats",
        f"  API docs         {base}/docs",
        f"  Dashboard        {base}/dashboard",
        f"  Metrics          {base}/metrics",
        f"  RabbitMQ UI      {management}  (guest/guest on a local install)",
        f"  Redis            {redact_url(settings.redis_url)}",
    ]
    if token:
        lines += [f"  Dev admin token  {token}", f"  Try: curl -H 'Authorization: Bearer {token}' {base}/api/v1/tasks/stats"]
    print("\n".join(lines) + "\n", flush=True)


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for proc in children.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
