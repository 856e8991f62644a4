"""What every ``claw-pipeline`` command shares: logging, the exit code and one-line errors.

Errors a user can fix (bad settings, unreachable services, bad arguments,
unknown tasks) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import logging

from pipeline.errors import BrokerUnavailable, ConfigError, InvalidArguments, InvalidTransition, TaskNotFound, UnknownActor
from pipeline.knowledge.extra import KnowledgeStackMissing

EXIT_USAGE = 2
USER_ERRORS = (ConfigError, InvalidArguments, UnknownActor, TaskNotFound, InvalidTransition, BrokerUnavailable,
               KnowledgeStackMissing)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )
    logging.getLogger("pika").setLevel(logging.WARNING)


def error_line(exc: Exception, text: str | None = None) -> str:
    """``claw-pipeline: error: <text>`` with the fields an InvalidArguments names."""
    detail = ""
    if isinstance(exc, InvalidArguments) and exc.fields:
        detail = " (" + "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) + ")"
    return f"claw-pipeline: error: {str(exc) if text is None else text}{detail}"
