"""Logging in with a service token, and logging out.

The token is checked exactly as the API checks a bearer token (same
settings, the SHA-256 of what was typed); a successful login replaces the
visitor's session with a new one (new nonce, so new CSRF tokens). A failed
login is counted for the client's address and written to the audit log;
past ``CLAW_DASHBOARD_LOGIN_LIMIT`` the address gets 429 until the window
passes. Logging out revokes the session server-side.
"""

from __future__ import annotations

import falcon

from api.dashboard.web import PREFIX, Resource, audit, redirect, responder


def safe_next(target: object) -> str:
    """Where to go after login: a dashboard path, never another site (no open redirect)."""
    if isinstance(target, str) and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


class LoginPage(Resource):
    @responder(None)
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        if session.caller is not None:
            redirect(resp, safe_next(req.get_param("next")))
            return
        self.dashboard.render(req, resp, session, "login.html", section="login", next=safe_next(req.get_param("next")),
                              problem="")

    @responder(None)
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form: dict) -> None:
        sessions, address = self.dashboard.sessions, req.remote_addr or ""
        wait = sessions.login_blocked(address)
        if wait:
            resp.set_header("Retry-After", str(wait))
            self.dashboard.render(req, resp, session, "login.html", status=429, section="login",
                                  next=safe_next(form.get("next")),
                                  problem=f"Too many failed logins from your address; try again in {wait} s.")
            return
        token = form.get("token") if isinstance(form.get("token"), str) else ""
        fresh = sessions.new(token.strip()) if token.strip() else None
        if fresh is None or fresh.caller is None:
            sessions.login_failed(address)
            self.dashboard.render(req, resp, session, "login.html", status=401, section="login",
                                  next=safe_next(form.get("next")), problem="That token is not valid here.")
            audit(self.dashboard, req, resp, session, {"refused": "unknown token"})
            return
        sessions.write(req, resp, fresh)
        redirect(resp, safe_next(form.get("next")))
        audit(self.dashboard, req, resp, fresh, {})


class LogoutPage(Resource):
    @responder(None)
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form: dict) -> None:
        sessions = self.dashboard.sessions
        if session.caller is not None and session.token_id:
            sessions.revoke(session)
            audit(self.dashboard, req, resp, session, {})
        sessions.write(req, resp, sessions.new())
        redirect(resp, f"{PREFIX}/login?notice=logged_out")
