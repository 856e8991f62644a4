"""Who may look and who may act: login, the session cookie, roles and CSRF."""

from __future__ import annotations

from http.cookies import SimpleCookie

from pipeline import client
from tests.dashboard.conftest import TOKENS, Browser, build_app

PAGES = ("/dashboard/", "/dashboard/tasks", "/dashboard/queues", "/dashboard/workers", "/dashboard/schedules")


def test_without_a_session_pages_redirect_to_login_and_json_answers_401(browser):
    for path in PAGES:
        result = browser.get(path)
        assert result.status_code == 303
        assert result.headers["location"].startswith("/dashboard/login?next=")
    assert browser.get("/dashboard/api/overview").status_code == 401
    assert browser.get("/dashboard/login").status_code == 200


def test_the_bearer_token_does_not_open_the_dashboard_and_the_dashboard_does_not_open_the_api(browser):
    assert browser.get("/dashboard/", headers={"Authorization": f"Bearer {TOKENS['admin']}"}).status_code == 303
    browser.login("admin")
    assert browser.get("/api/v1/tasks/list").status_code == 401  # the cookie is no bearer token


def test_login_sets_a_signed_httponly_samesite_strict_cookie_scoped_to_the_dashboard(browser):
    result = browser.login("read")
    assert result.headers["location"] == "/dashboard/"
    cookie = SimpleCookie(result.headers["set-cookie"])["claw_dashboard"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/dashboard"
    assert TOKENS["read"] not in result.headers["set-cookie"]
    assert browser.get("/dashboard/").status_code == 200


def test_a_wrong_token_is_refused_and_a_tampered_cookie_is_ignored(browser):
    browser.get("/dashboard/login")
    result = browser.post("/dashboard/login", {"token": "x" * 40})
    assert result.status_code == 401 and "not valid" in result.text
    browser.login("read")
    payload, _, signature = browser.cookies["claw_dashboard"].rpartition(".")
    browser.cookies["claw_dashboard"] = payload + "." + ("0" if signature[0] != "0" else "1") + signature[1:]
    assert browser.get("/dashboard/").status_code == 303


def test_login_never_redirects_off_the_dashboard(browser):
    browser.get("/dashboard/login")
    result = browser.post("/dashboard/login", {"token": TOKENS["read"], "next": "https://evil.example/"})
    assert result.headers["location"] == "/dashboard/"


def test_read_role_sees_every_page_but_cannot_act(as_role, engine):
    reader = as_role("read")
    for path in PAGES:
        assert reader.get(path).status_code == 200, path
    task_id = client.submit("record_order", kwargs={"list_key": "k", "tag": "a"})  # no worker: stays PENDING
    page = reader.get(f"/dashboard/tasks/{task_id}")
    assert "Cancel task" not in page.text
    result = reader.post(f"/dashboard/tasks/{task_id}/cancel")
    assert result.status_code == 403 and "tasks:control" in result.text
    assert engine.store.get(task_id)["state"] == "PENDING"
    assert reader.post("/dashboard/workers/command", {"command": "shutdown", "target": "*", "confirm": "yes"}).status_code == 403


def test_submit_role_cannot_act_either(as_role, engine):
    task_id = client.submit("record_order", kwargs={"list_key": "k", "tag": "a"})
    submitter = as_role("submit")
    submitter.get(f"/dashboard/tasks/{task_id}")
    assert submitter.post(f"/dashboard/tasks/{task_id}/cancel").status_code == 403


def test_admin_can_act(as_role, engine):
    task_id = client.submit("record_order", kwargs={"list_key": "k", "tag": "a"})
    admin = as_role("admin")
    assert "Cancel task" in admin.get(f"/dashboard/tasks/{task_id}").text
    result = admin.post(f"/dashboard/tasks/{task_id}/cancel")
    assert result.status_code == 303 and result.headers["location"].endswith("notice=cancelled")
    assert engine.store.get(task_id)["state"] == "CANCELLED"


def test_posts_without_or_with_a_wrong_csrf_token_are_refused(as_role, engine, app):
    task_id = client.submit("record_order", kwargs={"list_key": "k", "tag": "a"})
    admin = as_role("admin")
    admin.get(f"/dashboard/tasks/{task_id}")
    assert admin.post(f"/dashboard/tasks/{task_id}/cancel", csrf="").status_code == 403
    assert admin.post(f"/dashboard/tasks/{task_id}/cancel", csrf="0" * 64).status_code == 403
    other = Browser(app)
    other.login("admin")
    other.get("/dashboard/")
    assert admin.post(f"/dashboard/tasks/{task_id}/cancel", csrf=other.last_csrf).status_code == 403  # another session's
    assert engine.store.get(task_id)["state"] == "PENDING"
    anonymous = Browser(app)
    anonymous.get("/dashboard/login")
    assert anonymous.post("/dashboard/login", {"token": TOKENS["admin"]}, csrf="").status_code == 403


def test_login_issues_a_new_session_so_a_planted_one_is_worthless(browser):
    browser.get("/dashboard/login")
    before_cookie, before_csrf = browser.cookies["claw_dashboard"], browser.last_csrf
    browser.post("/dashboard/login", {"token": TOKENS["admin"]})
    assert browser.cookies["claw_dashboard"] != before_cookie
    browser.get("/dashboard/")
    assert browser.last_csrf != before_csrf


def test_logout_revokes_the_session_server_side_so_a_copy_of_the_cookie_is_worthless(as_role, app):
    admin = as_role("admin")
    admin.get("/dashboard/")
    stolen = Browser(app)
    stolen.cookies = dict(admin.cookies)
    assert stolen.get("/dashboard/").status_code == 200
    result = admin.post("/dashboard/logout")
    assert result.status_code == 303
    assert admin.get("/dashboard/").status_code == 303
    assert stolen.get("/dashboard/").status_code == 303  # the copy kept from before the logout is refused too
    assert stolen.get("/dashboard/api/overview").status_code == 401


def test_failed_logins_are_throttled_per_client_address_and_written_to_the_audit_log(browser, app, engine):
    browser.get("/dashboard/login")
    answers = [browser.post("/dashboard/login", {"token": f"guess-{i:02d}-" + "x" * 30}).status_code for i in range(11)]
    assert answers == [401] * 10 + [429]  # CLAW_DASHBOARD_LOGIN_LIMIT: 10 per 5 minutes
    blocked = browser.post("/dashboard/login", {"token": TOKENS["admin"]})  # even the right token, for now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 200 and "Too many failed logins" in blocked.text
    entries, _ = engine.store.audit_page(20, action="POST /dashboard/login")
    assert [e["outcome"] for e in entries[:3]] == ["429", "429", "401"] or [e["outcome"] for e in entries[:2]] == ["401", "401"]
    assert all(e["who"] == "anonymous" and e["detail"].get("refused") == "unknown token" for e in entries if e["outcome"] == "401")
    engine.store.redis.delete(engine.store.keys.dashboard_login_failures(entries[0]["address"]))
    assert browser.post("/dashboard/login", {"token": TOKENS["admin"]}).status_code == 303  # the window has passed


def test_the_audit_page_lists_dashboard_actions_for_tokens_with_audit_read(as_role, engine):
    admin = as_role("admin")
    task_id = client.submit("record_order", kwargs={"list_key": "k", "tag": "a"})
    admin.get(f"/dashboard/tasks/{task_id}")
    assert admin.post(f"/dashboard/tasks/{task_id}/cancel").status_code == 303
    page = admin.get("/dashboard/audit")
    assert page.status_code == 200 and "dashboard:admin" in page.text and f"/dashboard/tasks/{task_id}/cancel" in page.text
    assert as_role("submit").get("/dashboard/audit").status_code == 403
    assert 'href="/dashboard/audit"' in page.text and 'href="/dashboard/audit"' not in as_role("read").get("/dashboard/").text


def test_pages_mask_a_users_data_for_tokens_that_may_not_see_it(as_role, engine):
    task_id = client.submit("echo", kwargs={"value": "shown", "password": "only-for-its-owner"}, user_id="una",
                            submitted_by="backend")
    admin = as_role("admin")
    for path in (f"/dashboard/tasks/{task_id}", "/dashboard/tasks", f"/dashboard/api/tasks/{task_id}"):
        page = admin.get(path)
        assert page.status_code == 200 and "only-for-its-owner" not in page.text, path
    assert "shown" in admin.get(f"/dashboard/tasks/{task_id}").text
    # A masked value cannot be probed for with the search box either.
    assert f'href="/dashboard/tasks/{task_id}"' not in admin.get("/dashboard/tasks?q=only-for-its").text
    assert f'href="/dashboard/tasks/{task_id}"' in admin.get("/dashboard/tasks?q=shown").text


def test_a_removed_token_ends_its_sessions(as_role, engine, settings):
    from api.dashboard.sessions import Sessions

    reader = as_role("read")
    cookie = reader.cookies["claw_dashboard"]
    now = Sessions(engine.settings, lambda: engine.store.redis)
    assert now.decode(cookie).caller.name == "read"
    without_read = [token for token in engine.settings.api_tokens if token.name != "read"]
    later = Sessions(engine.settings.model_copy(update={"api_tokens": without_read}), lambda: engine.store.redis)
    assert later.decode(cookie) is None


def test_with_auth_disabled_everyone_is_admin_but_csrf_still_applies(engine):
    from pipeline.engine import Engine

    open_engine = Engine(engine.settings.model_copy(update={"auth_disabled": True, "api_tokens": []}),
                         engine.store, engine.workers, engine.broker)
    visitor = Browser(build_app(open_engine))
    page = visitor.get("/dashboard/")
    assert page.status_code == 200 and "auth disabled" in page.text
    task_id = client.submit("record_order", kwargs={"list_key": "k", "tag": "a"})
    visitor.get(f"/dashboard/tasks/{task_id}")
    assert visitor.post(f"/dashboard/tasks/{task_id}/cancel", csrf="").status_code == 403
    assert visitor.post(f"/dashboard/tasks/{task_id}/cancel").status_code == 303
    assert engine.store.get(task_id)["state"] == "CANCELLED"


def test_a_non_ascii_session_cookie_or_csrf_token_is_refused_with_a_4xx_not_a_500(browser):
    browser.cookies["claw_dashboard"] = "é" * 20 + ".签名"
    assert browser.get("/dashboard/").status_code == 303  # no session: to the login page
    assert browser.get("/dashboard/api/overview").status_code == 401
    browser.cookies.clear()
    browser.get("/dashboard/login")
    refused = browser.post("/dashboard/login", {"token": "tökén-" + "x" * 30}, csrf="é" * 64)
    assert refused.status_code == 403 and "Form expired" in refused.text
    wrong = browser.post("/dashboard/login", {"token": "tökén-" + "x" * 30})
    assert wrong.status_code == 401 and "not valid" in wrong.text
