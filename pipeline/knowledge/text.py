"""What PostgreSQL can store, as pydantic types: shared by the actors' argument models and the API's.

A module of its own, without the database driver, so that declaring and
submitting knowledge tasks (and validating their arguments in the API) works
without the ``[knowledge]`` extra.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

MAX_TEXT_CHARS = 1_000_000  # one document; larger texts belong split into several


def _no_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL (U+0000): refuse it at the door, naming the field."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


#: A string (or JSON value) that PostgreSQL can store.
StoredText = Annotated[str, AfterValidator(_no_nul)]
StoredJson = Annotated[dict[str, Any], AfterValidator(_no_nul)]
