"""The floor under the API figures: Falcon answering a fixed task record, with
no authentication, Redis or metrics, served by the API's own gunicorn settings
(``infra/gunicorn.conf.py``: gthread workers, access log). What the status
lookup reaches on a machine can be read against what this reaches there."""

import falcon

RECORD = {"task_id": "00000000-0000-0000-0000-000000000000", "actor": "send_notification", "state": "SUCCESS",
          "queue": "notification_default", "priority": 0, "attempts": 1, "result": None}


class FixedRecord:
    def on_get(self, req, resp):
        resp.media = RECORD


app = falcon.App()
app.add_route("/", FixedRecord())
