"""Workers: the live list, and pool-restart / shutdown commands.

Commands go over Redis pub/sub (see :mod:`pipeline.state.workers`), so the
answer can only say how many worker processes heard the command, not what
they did; the worker list shows the effect a few seconds later.
"""

from __future__ import annotations

import falcon

from api.auth import Access
from api.blocking import run_blocking
from api.errors import ApiError
from api.models import WorkerCommandBody, WorkerCommandSent, WorkerList
from api.resources import EngineProvider, EngineResource
from api.validation import Endpoint

TAG = "workers"


class WorkerListResource(EngineResource):
    access = {"GET": Access("workers:read", users=False)}
    endpoints = {"GET": Endpoint("Live worker processes (oldest first)", TAG, operation_id="listWorkers", response=WorkerList)}

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        workers = await run_blocking(self.engine().workers.list)
        resp.media = {"workers": workers, "count": len(workers)}


class WorkerCommandResource:
    """POST sends *command* to one worker (``{"worker": id}``) or to all (no body)."""

    access = {"POST": Access("workers:control", users=False, audit=True)}

    def __init__(self, engine: EngineProvider, command: str, summary: str, operation_id: str):
        self.engine = engine
        self.command = command
        self.endpoints = {"POST": Endpoint(summary, TAG, operation_id=operation_id, body=WorkerCommandBody, response=WorkerCommandSent,
                                           status=202, errors=(404,), body_required=False)}

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await self.endpoints["POST"].parse_body(req)
        heard = await run_blocking(self._send, body.worker)
        resp.status = falcon.HTTP_202
        resp.media = {"command": self.command, "worker": body.worker, "processes_notified": heard}

    def _send(self, worker: str | None) -> int:
        registry = self.engine().workers
        if worker is not None and worker not in {w.get("id") for w in registry.list()}:
            raise ApiError(404, "Worker not found", f"no live worker {worker!r}",
                           fields={"worker": "not in the live worker list"})
        return registry.send_command(self.command, worker)
