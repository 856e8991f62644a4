"""Workers: each live worker process, and pool-restart / shutdown with a confirm step.

A command targets one process (its id), one supervisor (its node: every
process it runs) or all of them. Pressing a button only shows what would
happen; a second, explicit POST sends it. Commands travel over Redis pub/sub
(:meth:`pipeline.state.workers.WorkerRegistry.send_command`), so the result
is seen in the list a heartbeat or two later, not in the answer.
"""

from __future__ import annotations

from collections import defaultdict

import falcon

from api.dashboard.web import PREFIX, Resource, redirect, responder

COMMANDS = {
    "pool_restart": ("Restart", "finish their running tasks, then start again in fresh processes"),
    "shutdown": ("Shut down", "finish their running tasks, then stop for good (a stopped supervisor is not restarted)"),
}


def by_node(workers: list[dict]) -> dict[str, list[dict]]:
    nodes: dict[str, list[dict]] = defaultdict(list)
    for worker in workers:
        nodes[worker.get("node", worker.get("host", "?"))].append(worker)
    return dict(sorted(nodes.items()))


class WorkersPage(Resource):
    @responder("workers:read")
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        workers = self.dashboard.engine().workers.list()
        self.dashboard.render(req, resp, session, "workers.html", section="workers", nodes=by_node(workers),
                              count=len(workers), commands=COMMANDS)


class WorkerCommandPage(Resource):
    """POST ``command`` and ``target`` (a worker id, a node, or ``*``); with ``confirm=yes`` it is sent."""

    @responder("workers:control")
    def on_post(self, req: falcon.Request, resp: falcon.Response, session, form: dict) -> None:
        ui = self.dashboard
        command, target = form.get("command"), form.get("target") or ""
        workers = ui.engine().workers.list()
        targets = {"*": workers}
        for worker in workers:
            targets[worker["id"]] = [worker]
            targets.setdefault(worker.get("node", ""), []).append(worker)
        if command not in COMMANDS or target not in targets:
            ui.error(req, resp, session, 404, "No such worker",
                     "That worker is not in the live list any more (or the command is unknown).")
            return
        if form.get("confirm") != "yes":
            ui.render(req, resp, session, "confirm.html", section="workers", command=command,
                      label=COMMANDS[command][0], effect=COMMANDS[command][1], target=target, affected=targets[target])
            return
        ui.engine().workers.send_command(command, None if target == "*" else target)
        redirect(resp, f"{PREFIX}/workers?notice=command_sent")


class WorkersJson(Resource):
    """The live worker ids, for the workers page's script (it reloads when they change)."""

    @responder("workers:read", json_api=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, session) -> None:
        workers = self.dashboard.engine().workers.list()
        resp.media = {"workers": sorted(w["id"] for w in workers), "count": len(workers)}
