"""``claw-pipeline scheduler`` and ``claw-pipeline schedules list|add|update|pause|resume|delete``.

:func:`register` adds the subcommands to a parser and returns their handlers;
:mod:`pipeline.cli` calls it. ``python -m scheduler.cli ...`` runs the same
commands on their own (tests start scheduler processes that way).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable

from pipeline.console import EXIT_USAGE, add_logging_options, apply_logging_options, error_line
from pipeline.engine import get_engine
from pipeline.errors import ConfigError, InvalidArguments, UnknownActor
from pipeline.observability import tracing
from pipeline.services import check_services
from pipeline.settings import get_settings
from scheduler.config import get_scheduler_settings
from scheduler.store import ScheduleExists, ScheduleNotFound, ScheduleStore


def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``scheduler`` and ``schedules`` to an argparse subparsers object; returns their handlers."""
    subparsers.add_parser("scheduler", help="run a scheduler replica (run two or more: one leads, the others stand by)")
    schedules = subparsers.add_parser("schedules", help="list, add, update, pause, resume or delete schedules")
    actions = schedules.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every schedule with its next/last run, last task and run count")

    add = actions.add_parser("add", help="add a schedule (cron or interval)")
    add.add_argument("id", help="schedule id (letters, digits, _ . -)")
    add.add_argument("--actor", help="the task to submit (or --workflow)")
    _definition_options(add)
    add.add_argument("--disabled", action="store_true", help="add it paused")

    update = actions.add_parser("update", help="change a schedule (a new cron replaces an interval and vice versa)")
    update.add_argument("id")
    update.add_argument("--actor", help="the task to submit")
    _definition_options(update)

    for name, text in (("pause", "stop firing until resumed"), ("resume", "fire again (missed fires are not caught up)"),
                       ("delete", "delete a schedule")):
        actions.add_parser(name, help=text).add_argument("id")

    return {"scheduler": cmd_scheduler, "schedules": cmd_schedules}


def _definition_options(parser: argparse.ArgumentParser) -> None:
    trigger = parser.add_mutually_exclusive_group()
    trigger.add_argument("--cron", help='5-field crontab expression, e.g. "0 2 * * *" (day of week: 0 and 7 = Sunday)')
    trigger.add_argument("--every", type=int, metavar="SECONDS", help="fire every SECONDS seconds")
    parser.add_argument("--timezone", help="timezone of the cron expression (default CLAW_TIMEZONE)")
    parser.add_argument("--kwargs", help="the task's keyword arguments as a JSON object")
    parser.add_argument("--priority", type=int, help="0-9 (default: the actor's)")
    parser.add_argument("--workflow", help="instead of --actor: a workflow's JSON description (chain, group or chord)")


def _definition(args) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for option, field in (("actor", "actor"), ("cron", "cron"), ("every", "interval_seconds"),
                          ("timezone", "timezone"), ("priority", "priority")):
        if getattr(args, option, None) is not None:
            values[field] = getattr(args, option)
    for option in ("kwargs", "workflow"):
        if getattr(args, option) is not None:
            try:
                values[option] = json.loads(getattr(args, option))
            except ValueError as exc:
                raise InvalidArguments(f"--{option} is not JSON ({exc})", {option: "not valid JSON"}) from None
    return values


def cmd_scheduler(args) -> int:
    from scheduler.runner import run_scheduler  # APScheduler: loaded only by the process that runs it

    settings = get_settings()
    config = get_scheduler_settings()
    check_services(settings)
    tracing.setup("scheduler")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # each fire is logged once, by us
    return run_scheduler(settings, config)


def cmd_schedules(args) -> int:
    import scheduler.builtin  # noqa: F401  (declares the built-in schedules' actors, so they validate; loads every actor module)

    store = ScheduleStore.for_engine(get_engine())
    try:
        if args.action == "list":
            result: Any = store.list()
        elif args.action == "add":
            result = store.add({"id": args.id, "enabled": not args.disabled, **_definition(args)})
        elif args.action == "update":
            result = store.update(args.id, _definition(args))
        elif args.action == "delete":
            store.delete(args.id)
            result = {"deleted": args.id}
        else:
            result = getattr(store, args.action)(args.id)  # pause / resume
    except ScheduleNotFound as exc:
        raise InvalidArguments(str(exc), {"id": "no such schedule"}) from None
    except ScheduleExists as exc:
        raise InvalidArguments(str(exc), {"id": "already exists; use update"}) from None
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run these commands without the rest of ``claw-pipeline``."""
    parser = argparse.ArgumentParser(prog="claw-pipeline")
    commands = register(parser.add_subparsers(dest="command", required=True))
    add_logging_options(parser)
    args = parser.parse_args(argv)
    try:
        apply_logging_options(args)
        return commands[args.command](args)
    except (ConfigError, InvalidArguments, UnknownActor) as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
