"""The floor under the API figures: Falcon answering a fixed task record, with
no authentication, Redis or metrics, served by the API's own server settings
(``api.server.gunicorn_conf``: uvicorn workers, access log). What the status
lookup reaches on a machine can be read against what this reaches there."""

import falcon.asgi

from api.server.asgi import ServedApp

RECORD = {"task_id": "00000000-0000-0000-0000-000000000000", "actor": "send_notification", "state": "SUCCESS",
          "queue": "notification_default", "priority": 0, "attempts": 1, "result": None}


class FixedRecord:
    async def on_get(self, req, resp):
        resp.media = RECORD


floor = falcon.asgi.App()
floor.add_route("/", FixedRecord())
app = ServedApp(floor)
