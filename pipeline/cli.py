"""``claw-pipeline``: one command for every process and for operators.

Errors a user can fix (bad settings, unreachable services, bad arguments,
unknown tasks) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import socket
import sys
from importlib.metadata import version
from typing import Callable

from pipeline import client, workflow
from pipeline.broker import resolve_policies
from pipeline.console import EXIT_USAGE, USER_ERRORS, add_logging_options, apply_logging_options, error_line
from pipeline.engine import get_engine, make_registry
from pipeline.errors import ConfigError, InvalidArguments
from pipeline.knowledge import extra
from pipeline.knowledge.config import get_knowledge_settings
from pipeline.maintenance.config import get_health_settings
from pipeline.notifications.config import get_notification_settings
from pipeline.observability import tracing
from pipeline.registry import queue_names
from pipeline.services import check_services
from pipeline.settings import get_settings
from pipeline.stack import run_stack
from pipeline.tokens import digest
from pipeline.worker import WorkerOptions, run_worker
from scheduler import cli as scheduler_cli
from scheduler.config import get_scheduler_settings

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def validate_all_settings(settings) -> None:
    """Every settings object, the domains' included, checked at start rather than at first use."""
    resolve_policies(settings)
    get_knowledge_settings()
    get_notification_settings()
    get_health_settings()
    get_scheduler_settings()
    tracing.check()


def _print(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@command("worker")
def cmd_worker(args) -> int:
    settings = get_settings()
    validate_all_settings(settings)
    options = WorkerOptions.from_settings(settings, processes=args.processes, threads=args.threads, queues=args.queues)
    declared = set(queue_names())
    idle = [q for q in options.queues if q not in declared]
    if idle:
        raise ConfigError(f"--queues / CLAW_WORKER_QUEUES: no task is declared on {', '.join(idle)} "
                          f"(declared: {', '.join(sorted(declared))}; add modules with CLAW_TASK_MODULES)")
    check_services(settings)
    return run_worker(options)


@command("api")
def cmd_api(args) -> int:
    from api.cli import run_api  # the API and gunicorn: loaded only by the process that serves it

    settings = get_settings()
    validate_all_settings(settings)
    check_services(settings)
    return run_api(args.bind, args.workers or settings.api_workers)


@command("run")
def cmd_run(args) -> int:
    return run_stack(get_settings(), args.bind)


@command("health")
def cmd_health(args) -> int:
    """For container health checks: services answer (and, with --worker, a worker runs here)."""
    settings = get_settings()
    check_services(settings)
    if args.worker and socket.gethostname() not in {w["host"] for w in make_registry(settings).list()}:
        print("claw-pipeline: unhealthy: no live worker process on this host", file=sys.stderr)
        return 1
    print("ok")
    return 0


@command("submit")
def cmd_submit(args) -> int:
    try:
        kwargs = json.loads(args.kwargs)
    except ValueError as exc:
        raise InvalidArguments(f"--kwargs is not JSON ({exc})") from None
    if not isinstance(kwargs, dict):
        raise InvalidArguments("--kwargs must be a JSON object")
    task_id = client.submit(args.actor, kwargs=kwargs, priority=args.priority, delay_ms=args.delay_ms,
                            idempotency_key=args.idempotency_key, user_id=args.user_id, tenant_id=args.tenant_id,
                            submitted_by="cli")
    print(task_id)
    return 0


def _operator() -> str:
    """Who runs an admin command, for the audit log."""
    return f"cli:{getpass.getuser()}"


@command("status")
def cmd_status(args) -> int:
    _print(client.get_record(args.task_id))
    return 0


@command("cancel")
def cmd_cancel(args) -> int:
    outcome = client.cancel(args.task_id)
    get_engine().store.audit(_operator(), "cancel", target=args.task_id, outcome=outcome["state"])
    _print(outcome)
    return 0


@command("retry")
def cmd_retry(args) -> int:
    new_id = client.retry(args.task_id, submitted_by=_operator())
    get_engine().store.audit(_operator(), "retry", target=args.task_id, outcome="PENDING", detail={"new_task_id": new_id})
    print(new_id)
    return 0


@command("token")
def cmd_token(args) -> int:
    """A new random token (256 bits), its CLAW_API_TOKENS entry, and the entry with its SHA-256 instead."""
    token = secrets.token_urlsafe(32)
    print(f"token:  {token}")
    print(f"entry:  {args.name}:{token}:{args.grant}")
    print(f"hashed: {args.name}:sha256={digest(token).hex()}:{args.grant}")
    return 0


@command("workflow")
def cmd_workflow(args) -> int:
    if args.action == "submit":
        try:
            description = json.loads(args.target)
        except ValueError as exc:
            raise InvalidArguments(f"the description is not JSON ({exc})") from None
        print(workflow.from_description(description).submit())
    elif args.action == "status":
        _print(workflow.get(args.target, limit=args.limit))
    else:
        _print(getattr(workflow, args.action)(args.target))
    return 0


@command("workers")
def cmd_workers(args) -> int:
    registry = get_engine().workers
    if args.action == "list":
        _print(registry.list())
    else:
        heard = registry.send_command("pool_restart" if args.action == "restart" else "shutdown", args.worker)
        get_engine().store.audit(_operator(), f"workers {args.action}", target=args.worker or "all", outcome=f"{heard} heard")
        print(f"{heard} worker process(es) received {args.action}")
    return 0


@command("kb")
def cmd_kb(args) -> int:
    (kb,) = extra.modules("cli")  # numpy, psycopg, the embedder: only for kb commands, and only with the extra

    if args.kb_command == "ingest":
        return kb.ingest(args.path, args.kb)
    return kb.search(args.kb_name, args.question, args.k)


@command("db")
def cmd_db(args) -> int:
    (kb,) = extra.modules("cli")  # numpy, psycopg, the embedder: only for db commands, and only with the extra

    return kb.db_upgrade()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claw-pipeline", description="CLAW.AI background-work engine")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('claw-pipeline')}")
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run worker processes (Dramatiq conventions)")
    worker.add_argument("-p", "--processes", type=int, help="worker processes (default CLAW_WORKER_PROCESSES)")
    worker.add_argument("-t", "--threads", type=int, help="threads per process (default CLAW_WORKER_THREADS)")
    worker.add_argument("-Q", "--queues", nargs="+", help="queues to consume (default: all)")

    api = sub.add_parser("api", help="serve the REST API (gunicorn supervising uvicorn workers)")
    api.add_argument("--bind", default="127.0.0.1:8000", help="HOST:PORT (default 127.0.0.1:8000)")
    api.add_argument("--workers", type=int, help="API worker processes (default CLAW_API_WORKERS or 2)")

    run = sub.add_parser("run", help="run the whole local stack (API, worker, scheduler)")
    run.add_argument("--bind", default="127.0.0.1:8000", help="API address (default 127.0.0.1:8000)")

    health = sub.add_parser("health", help="exit 0 when RabbitMQ and Redis answer (for health checks)")
    health.add_argument("--worker", action="store_true", help="also require a live worker process on this host")

    submit = sub.add_parser("submit", help="submit a task")
    submit.add_argument("actor")
    submit.add_argument("--kwargs", default="{}", help="keyword arguments as a JSON object")
    submit.add_argument("--priority", type=int)
    submit.add_argument("--delay-ms", type=int)
    submit.add_argument("--idempotency-key")
    submit.add_argument("--user-id", help="the end user the task is for (its owner)")
    submit.add_argument("--tenant-id", help="the owner's tenant")

    for name, text in (("status", "show a task record"), ("cancel", "cancel a task"), ("retry", "re-run a failed or cancelled task")):
        one = sub.add_parser(name, help=text)
        one.add_argument("task_id")

    flow = sub.add_parser("workflow", help="submit a chain, group or chord; show, cancel or retry one")
    flow.add_argument("action", choices=("submit", "status", "cancel", "retry"))
    flow.add_argument("target", help="submit: the JSON description; otherwise: the workflow id")
    flow.add_argument("--limit", type=int, default=100, help="status: how many of its tasks to show")

    workers = sub.add_parser("workers", help="list workers, or restart / shut them down")
    workers.add_argument("action", choices=("list", "restart", "shutdown"), nargs="?", default="list")
    workers.add_argument("--worker", help="one worker id (default: all)")
    token = sub.add_parser("token", help="generate a service token (or a user-token signing key)")
    token.add_argument("action", choices=("new",))
    token.add_argument("--name", default="backend", help="the token's name in CLAW_API_TOKENS (default backend)")
    token.add_argument("--grant", default="submit", help="a role or scopes joined by + (default submit)")
    kb = sub.add_parser("kb", help="knowledge bases: ingest files, search")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    ingest = kb_sub.add_parser("ingest", help="vectorize every .txt/.md file under PATH, with a progress bar")
    ingest.add_argument("path")
    ingest.add_argument("--kb", required=True, help="knowledge base name (created if missing)")
    search = kb_sub.add_parser("search", help="search a knowledge base")
    search.add_argument("kb_name")
    search.add_argument("question")
    search.add_argument("-k", type=int, default=5, help="how many documents")

    db = sub.add_parser("db", help="database schema")
    db.add_argument("db_command", choices=("upgrade",), help="apply pending migrations")

    COMMANDS.update(scheduler_cli.register(sub))
    add_logging_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        apply_logging_options(args)
        return COMMANDS[args.command](args)
    except USER_ERRORS as exc:
        print(error_line(exc, str(exc).strip(chr(39))), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
