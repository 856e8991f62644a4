"""What every ``claw-pipeline`` command shares: logging, the exit code and one-line errors.

Errors a user can fix (bad settings, unreachable services, bad arguments,
unknown tasks) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os

from pipeline.errors import BrokerUnavailable, ConfigError, InvalidArguments, InvalidTransition, TaskNotFound, UnknownActor
from pipeline.knowledge.extra import KnowledgeStackMissing
from pipeline.observability import logs
from pipeline.settings import Settings, env_name, get_settings

EXIT_USAGE = 2
USER_ERRORS = (ConfigError, InvalidArguments, UnknownActor, TaskNotFound, InvalidTransition, BrokerUnavailable,
               KnowledgeStackMissing)


def add_logging_options(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """``--log-level`` and ``-v`` on *parser* and every subcommand under it, so either place works:
    ``claw-pipeline --log-level debug worker`` and ``claw-pipeline worker --log-level debug``."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--log-level", type=str.upper, choices=logs.LEVELS, default=default,
                        help="lowest level logged (default CLAW_LOG_LEVEL or INFO); child processes inherit it")
    parser.add_argument("-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="same as --log-level DEBUG")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_logging_options(child, top=False)


#: Commands that run until stopped log at CLAW_LOG_LEVEL; one-shot commands (submit, status, ...)
#: print their answer and log only warnings unless a level is asked for.
SERVICES = ("worker", "api", "run", "scheduler")


def apply_logging_options(args: argparse.Namespace) -> None:
    """The level chosen on the command line becomes CLAW_LOG_LEVEL, for this process and the ones it starts."""
    level = "DEBUG" if args.verbose else args.log_level
    if level:
        os.environ[env_name("log_level")] = level
        get_settings.cache_clear()
    settings = get_settings()
    if args.command not in SERVICES and env_name("log_level") not in os.environ:
        settings = settings.model_copy(update={"log_level": "WARNING"})
    setup_logging(settings)


def setup_logging(settings: Settings) -> None:
    """This process's log lines, as CLAW_LOG_LEVEL / CLAW_LOG_FORMAT (or ``--log-level``) say."""
    logs.setup_logging(settings.log_level, settings.log_format)


def error_line(exc: Exception, text: str | None = None) -> str:
    """``claw-pipeline: error: <text>`` with the fields an InvalidArguments names."""
    detail = ""
    if isinstance(exc, InvalidArguments) and exc.fields:
        detail = " (" + "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) + ")"
    return f"claw-pipeline: error: {str(exc) if text is None else text}{detail}"
