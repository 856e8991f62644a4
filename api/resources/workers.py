"""Workers: the live list, and pool-restart / shutdown commands.

Commands go over Redis pub/sub (see :mod:`pipeline.state.workers`), so the
answer can only say how many worker processes heard the command, not what
they did; the worker list shows the effect a few seconds later.
"""

from __future__ import annotations

import falcon

from api.errors import ApiError
from api.resources import EngineProvider
from api.validation import Endpoint, WorkerCommandBody, WorkerCommandSent, WorkerList

TAG = "workers"


class WorkerListResource:
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("Live worker processes (oldest first)", TAG, response=WorkerList)}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        workers = self.engine().workers.list()
        resp.media = {"workers": workers, "count": len(workers)}


class WorkerCommandResource:
    """POST sends *command* to one worker (``{"worker": id}``) or to all (no body)."""

    roles = {"POST": "admin"}

    def __init__(self, engine: EngineProvider, command: str, summary: str):
        self.engine = engine
        self.command = command
        self.endpoints = {"POST": Endpoint(summary, TAG, body=WorkerCommandBody, response=WorkerCommandSent,
                                           status=202, errors=(404,), body_required=False)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.endpoints["POST"].parse_body(req)
        registry = self.engine().workers
        if body.worker is not None and body.worker not in {w.get("id") for w in registry.list()}:
            raise ApiError(404, "Worker not found", f"no live worker {body.worker!r}",
                           fields={"worker": "not in the live worker list"})
        heard = registry.send_command(self.command, body.worker)
        resp.status = falcon.HTTP_202
        resp.media = {"command": self.command, "worker": body.worker, "processes_notified": heard}
