"""Overview: queues, workers online, tasks per state, and the last hour's throughput.

The page renders the same numbers the JSON endpoint returns, so it is
complete without JavaScript; the script then refreshes it from the JSON
every few seconds and draws the charts.
"""

from __future__ import annotations

import time
from typing import Any

import falcon

from api.dashboard.web import Dashboard, Resource, responder
from api.resources import known_queues
from pipeline.errors import BrokerUnavailable
from pipeline.state.keys import FINAL_STATES, STATES

SERIES_MINUTES = 60


def queue_rows(ui: Dashboard, counts: dict[str, dict[str, int]]) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Per queue: RabbitMQ's depths and rates with the store's counts (*counts*: per queue and state).

    RabbitMQ's numbers are None (shown as "—") when it does not answer; the
    store's are always there, since that is when operators look.
    """
    queues = sorted(counts)
    try:
        broker, error = ui.queue_stats.get(queues), None
    except BrokerUnavailable as exc:
        broker, error = {}, str(exc)
    rows = {}
    for queue in queues:
        stats = broker.get(queue, {})
        rows[queue] = {
            "ready": stats.get("ready"),
            "delayed": stats.get("delayed"),
            "running": counts[queue]["STARTED"],
            "dead_lettered": stats.get("dead_lettered"),
            "consumers": stats.get("consumers"),
            "publish_rate": stats.get("publish_rate"),
            "deliver_rate": stats.get("deliver_rate"),
            "pending": counts[queue]["PENDING"],
            "retry": counts[queue]["RETRY"],
            "failure": counts[queue]["FAILURE"],
        }
    return rows, error


def overview_data(ui: Dashboard) -> dict[str, Any]:
    engine = ui.engine()
    counts = engine.store.count_by_state([], known_queues(engine))
    queues, broker_error = queue_rows(ui, counts["queues"])
    series = engine.store.throughput_series(SERIES_MINUTES)
    return {
        "generated_at": time.time(),
        "states": counts["states"],
        "workers_online": engine.workers.count(),
        "queues": queues,
        "broker_error": broker_error,
        "series": series,
        "last_hour": {state: sum(point[state] for point in series) for state in FINAL_STATES},
    }


class OverviewPage(Resource):
    @responder("tasks:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        self.dashboard.render(req, resp, session, "overview.html", section="overview", data=overview_data(self.dashboard),
                              states=STATES, final_states=FINAL_STATES)


class OverviewJson(Resource):
    """What the overview's script polls."""

    @responder("tasks:read", json_api=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        resp.media = overview_data(self.dashboard)
