"""Logging in with an API token, and logging out.

The token is checked exactly as the API checks a bearer token (same
settings, constant-time comparison); a successful login replaces the
visitor's session with a new one (new nonce, so new CSRF tokens).
"""

from __future__ import annotations

import falcon

from api.dashboard.web import PREFIX, Resource, redirect, responder


def safe_next(target: object) -> str:
    """Where to go after login: a dashboard path, never another site (no open redirect)."""
    if isinstance(target, str) and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


class LoginPage(Resource):
    @responder(None)
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        if session.role is not None:
            redirect(resp, safe_next(req.get_param("next")))
            return
        self.dashboard.render(req, resp, session, "login.html", section="login", next=safe_next(req.get_param("next")),
                              problem="")

    @responder(None)
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form: dict) -> None:
        sessions = self.dashboard.sessions
        token = form.get("token") if isinstance(form.get("token"), str) else ""
        role = sessions.role_of_token(token.strip()) if token.strip() else None
        if role is None:
            self.dashboard.render(req, resp, session, "login.html", status=401, section="login",
                                  next=safe_next(form.get("next")), problem="That token is not valid here.")
            return
        sessions.write(req, resp, sessions.new(role, token.strip()))
        redirect(resp, safe_next(form.get("next")))


class LogoutPage(Resource):
    @responder(None)
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form: dict) -> None:
        sessions = self.dashboard.sessions
        sessions.write(req, resp, sessions.new())
        redirect(resp, f"{PREFIX}/login?notice=logged_out")
