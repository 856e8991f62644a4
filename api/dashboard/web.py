"""What every dashboard resource shares, and the one decorator that guards them.

The API's bearer-token middleware skips dashboard resources (their ``access``
is public for the API's own route check), so each responder here states the
scope it needs with :func:`responder`, which checks the session cookie, the
CSRF token of every POST and the scope before the responder runs, appends
every action (a POST) to the audit log, and turns an unreachable Redis or
RabbitMQ into an HTML page rather than the API's JSON error. Pages show task
records as the logged-in token may see them (:meth:`api.caller.Caller.view`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit, urlunsplit

import falcon
import redis

from api.auth import PUBLIC
from api.blocking import run_blocking
from api.dashboard.sessions import Session, Sessions
from api.dashboard.templating import make_environment
from api.resources import EngineProvider
from pipeline.errors import BrokerUnavailable, InvalidTransition, TaskNotFound
from pipeline.queues import QueueStatsCache

logger = logging.getLogger("api.dashboard")

PREFIX = "/dashboard"
HTML = "text/html; charset=utf-8"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
#: What an action's redirect may ask the next page to say (``?notice=``): fixed
#: texts, so a crafted link cannot put words on an operator's screen.
NOTICES = {
    "cancelled": "The task was cancelled; it will not run.",
    "interrupting": "The task is running; it has been asked to stop and will be interrupted.",
    "retried": "A new task was submitted to retry this one.",
    "requeued": "{count} dead-lettered message(s) moved back to the queue; their tasks are PENDING again.",
    "deleted": "{count} task(s) deleted.",
    "cancelled_many": "{count} task(s) cancelled.",
    "command_sent": "The command was sent; the worker list shows its effect within a few seconds.",
    "paused": "The schedule is paused.",
    "resumed": "The schedule is running again.",
    "logged_out": "You are logged out; this session cannot be used again.",
}


class Dashboard:
    """The engine, sessions, templates and queue-stats cache of one mounted dashboard.

    Everything touching a service is built on first use: the API app is built
    at import, before RabbitMQ or Redis need to answer.
    """

    def __init__(self, engine: EngineProvider):
        self.engine = engine
        self.templates = make_environment()
        self._sessions: Optional[Sessions] = None
        self._queue_stats: Optional[QueueStatsCache] = None

    @property
    def sessions(self) -> Sessions:
        if self._sessions is None:
            self._sessions = Sessions(self.engine().settings, lambda: self.engine().store.redis)
        return self._sessions

    @property
    def queue_stats(self) -> QueueStatsCache:
        if self._queue_stats is None:
            self._queue_stats = QueueStatsCache(self.engine().settings)
        return self._queue_stats

    def management_url(self) -> str:
        """The RabbitMQ management UI, with any credentials in the setting removed."""
        parts = urlsplit(self.engine().settings.rabbitmq_management_url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    def render(self, req: falcon.Request, resp: falcon.Response, session: Session, template: str,
               status: int = 200, **context: Any) -> None:
        page = self.templates.get_template(template)
        resp.status = status
        resp.content_type = HTML
        notice = NOTICES.get(req.get_param("notice") or "")
        if notice:
            count = req.get_param("count") or ""
            notice = notice.format(count=int(count) if count.isdigit() else 0)
        context.setdefault("notice", notice)
        if session.caller is not None:  # task records as this token may see them
            if context.get("task") is not None:
                context["task"] = session.caller.view(context["task"])
            if context.get("tasks") is not None:
                context["tasks"] = [session.caller.view(task) for task in context["tasks"]]
        resp.text = page.render(
            prefix=PREFIX, session=session, csrf=self.sessions.csrf_token(session),
            management_url=self.management_url(), **context,
        )

    def error(self, req: falcon.Request, resp: falcon.Response, session: Session, status: int, title: str,
              message: str) -> None:
        self.render(req, resp, session, "error.html", status=status, title=title, message=message)


class Resource:
    """Base of every dashboard resource."""

    #: The API's auth middleware leaves this resource alone; the session is checked here.
    access = {"GET": PUBLIC, "POST": PUBLIC}

    def __init__(self, dashboard: Dashboard):
        self.dashboard = dashboard


def redirect(resp: falcon.Response, location: str) -> None:
    """303 See Other (set on the response, not raised, so a Set-Cookie on it is kept)."""
    resp.status = falcon.HTTP_303
    resp.location = location


def control(ui: Dashboard, req: falcon.Request, resp: falcon.Response, session: Session, kind: str,
            action: str, actions: dict[str, Callable[[], str]], show: Callable[..., None]) -> None:
    """A control button's POST on a task or workflow: ``actions[action]()`` does it and names the page to go
    to next (an unknown action is a 404 page); a record that is gone, or a refused change (409, with the
    reason), shows the record's own page with ``show(**problem)``."""
    act = actions.get(action)
    if act is None:
        ui.error(req, resp, session, 404, "Unknown action", f"There is no {kind} action {action!r}.")
        return
    try:
        redirect(resp, act())
    except TaskNotFound:
        show()
    except InvalidTransition as exc:
        show(status=409, problem=str(exc))


def secure_headers(resp: falcon.Response) -> None:
    resp.set_headers(SECURITY_HEADERS)


def responder(scope: Optional[str], *, json_api: bool = False) -> Callable:
    """Guard a responder: session, CSRF on POST, then *scope* (None: anyone, e.g. the login page).

    The responder is written as plain (blocking) code: it reads Redis and
    renders a template. The guard reads a POST's form on the event loop, then
    runs everything else in the API's thread pool (:mod:`api.blocking`). The
    responder is called with ``session=`` and, for POST, ``form=`` (the form
    fields, with the CSRF token already checked).
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def guarded(self: Resource, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
            form = await _form(req) if req.method == "POST" else None
            await run_blocking(_guard, fn, scope, json_api, self, req, resp, form, params)

        return guarded

    return decorate


def _guard(fn: Callable, scope: Optional[str], json_api: bool, resource: Resource, req: falcon.Request,
           resp: falcon.Response, form: Optional[dict[str, Any]], params: dict[str, Any]) -> None:
    ui = resource.dashboard
    secure_headers(resp)
    resp.cache_control = ["no-store"]
    try:
        session = ui.sessions.read(req)
        if session is None:
            session = ui.sessions.new()
            ui.sessions.write(req, resp, session)
        if form is not None:
            if not ui.sessions.csrf_ok(session, form.get("csrf")):
                ui.error(req, resp, session, 403, "Form expired",
                         "This form was not served to this session (or the session changed). "
                         "Reload the page and try again.")
                return
            params["form"] = form
        if scope is not None and session.caller is None:
            _login_required(req, resp, json_api)
            return
        if scope is not None and not session.can(scope):
            ui.error(req, resp, session, 403, "Not allowed",
                     f"This needs the {scope!r} scope; token {session.name!r} does not have it.")
            return
        fn(resource, req, resp, session=session, **params)
        if form is not None and scope is not None:
            audit(ui, req, resp, session, {"action": form.get("action")} if form.get("action") else {})
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        _unavailable(ui, req, resp, json_api, "Redis", exc)
    except BrokerUnavailable as exc:
        _unavailable(ui, req, resp, json_api, "RabbitMQ", exc)


async def _form(req: falcon.Request) -> dict[str, Any]:
    """The urlencoded form fields (a repeated field is a list).

    Parsed here, not with ``req.get_media()``: the API accepts only JSON
    media, so that no JSON endpoint ever takes a form posted by another site.
    """
    if not (req.content_type or "").startswith(falcon.MEDIA_URLENCODED):
        return {}
    body = (await req.stream.read()).decode("utf-8", errors="replace")
    return falcon.uri.parse_query_string(body, keep_blank=True)


def audit(ui: Dashboard, req: falcon.Request, resp: falcon.Response, session: Session, detail: dict) -> None:
    """Append a dashboard action (or login attempt) to the audit log; a failure to do so is only logged."""
    who = f"dashboard:{session.name}" if session.caller is not None else "anonymous"
    try:
        ui.engine().store.audit(who, f"{req.method} {req.uri_template}", target=req.path, outcome=str(resp.status_code),
                                address=req.remote_addr or "", detail=detail)
    except redis.RedisError as exc:
        logger.warning("audit entry for %s %s not written: %s", req.method, req.path, exc)


def _login_required(req: falcon.Request, resp: falcon.Response, json_api: bool) -> None:
    if json_api:
        resp.status = falcon.HTTP_401
        resp.media = {"error": {"status": 401, "title": "Unauthorized", "description": "log in to the dashboard"}}
        return
    target = req.relative_uri if req.method == "GET" else PREFIX + "/"
    redirect(resp, f"{PREFIX}/login?next={quote(target, safe='')}")


def _unavailable(ui: Dashboard, req: falcon.Request, resp: falcon.Response, json_api: bool, what: str,
                 exc: Exception) -> None:
    """A page (or JSON) saying which service is down; it needs no session (Redis may be the one down)."""
    logger.warning("Dashboard %s %s: %s does not answer (%s)", req.method, req.path, what, exc)
    resp.status = falcon.HTTP_503
    resp.set_header("Retry-After", "5")
    message = f"{what} does not answer ({type(exc).__name__}). This page works again as soon as it does."
    if json_api:
        resp.media = {"error": {"status": 503, "title": f"{what} unavailable", "description": message}}
        return
    resp.content_type = HTML
    resp.text = ui.templates.get_template("unavailable.html").render(prefix=PREFIX, what=what, message=message)
