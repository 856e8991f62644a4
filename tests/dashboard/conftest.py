"""Fixtures for the dashboard: the real API app with the dashboard mounted, and a cookie-keeping client.

Every process a test starts (workers, gunicorn) gets the test's tokens through
``env``, so the dashboard, the API and the workers all read one settings set.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from falcon import testing

from tests.api.conftest import Server
from tests.app_client import AppClient

ROLES = ("read", "submit", "admin")
TOKENS = {role: f"{role}-dash-{uuid.uuid4().hex}" for role in ROLES}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def env(env):
    """The shared test environment plus this module's API tokens."""
    return {**env, "CLAW_API_TOKENS": ",".join(f"{role}:{token}:{role}" for role, token in TOKENS.items())}


def build_app(engine):
    """The API as the server serves it (the dashboard is part of it)."""
    from api.app import create_app

    return create_app(engine)


class Browser:
    """A Falcon test client that keeps cookies like a browser and posts forms with their CSRF token."""

    def __init__(self, app):
        self.client = AppClient(app)
        self.cookies: dict[str, str] = {}
        self.last_csrf = ""

    def request(self, method: str, path: str, **kwargs) -> testing.Result:
        result = self.client.simulate_request(method, path, cookies=self.cookies, **kwargs)
        for name, cookie in result.cookies.items():
            if cookie.value and (cookie.max_age is None or cookie.max_age > 0):
                self.cookies[name] = cookie.value
            else:
                self.cookies.pop(name, None)
        found = CSRF.search(result.text or "")
        if found:
            self.last_csrf = found.group(1)
        return result

    def get(self, path: str, **kwargs) -> testing.Result:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, fields=None, csrf: str | None = None) -> testing.Result:
        """POST a form; the CSRF token of the last page is added unless *csrf* is given ("" = none)."""
        form = list((fields or {}).items()) if isinstance(fields, dict) else list(fields or [])
        token = self.last_csrf if csrf is None else csrf
        if token:
            form.append(("csrf", token))
        return self.request("POST", path, body=urlencode(form, doseq=True),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})

    def login(self, role: str) -> testing.Result:
        self.get("/dashboard/login")
        result = self.post("/dashboard/login", {"token": TOKENS[role], "next": "/dashboard/"})
        assert result.status_code == 303, result.text
        return result


@pytest.fixture
def app(engine):
    return build_app(engine)


@pytest.fixture
def browser(app) -> Browser:
    return Browser(app)


@pytest.fixture
def as_role(app):
    """A logged-in Browser for a role."""

    def make(role: str) -> Browser:
        client = Browser(app)
        client.login(role)
        return client

    return make


# -- a real server and a real browser ------------------------------------------------------------

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium_path() -> str | None:
    return next((path for path in map(shutil.which, ("chromium", "chromium-browser")) if path), None)


@pytest.fixture
def server(env, engine):
    """``claw-pipeline api`` with this module's tokens."""
    started = Server(env)
    yield started
    started.close()


@pytest.fixture
def page(chromium, server):
    """A fresh browser tab (own cookies) on the live server, not logged in; 1280x860 like a laptop."""
    context = chromium.new_context(base_url=server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def log_in(tab, role: str) -> None:
    tab.goto("/dashboard/login")
    tab.fill("#token", TOKENS[role])
    tab.click("button[type=submit]")
    tab.wait_for_url("**/dashboard/")


def screenshot(tab, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    tab.screenshot(path=str(path), full_page=True)
    return path
