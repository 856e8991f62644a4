"""Sensitive data, declared where it is defined and masked wherever it is shown.

An argument model marks the fields that carry a user's data (a chat message,
a recipient, a notification body, a document's text) with :func:`Sensitive`
instead of ``Field``; a task names the keys of its result and progress that
do (``@task(sensitive_output=("reply",))``). Records keep the values: the
task's owner, the token that submitted it and tokens with the explicit
``tasks:sensitive`` scope see them; everyone else (lists and pages for
operators, the dashboard, the worker log) sees :data:`MASK` in their place.
Nothing is guessed from names: a field is sensitive because its model says so,
and the OpenAPI document shows it (``x-sensitive: true``).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pydantic
from pydantic import Field
from pydantic_core import PydanticUndefined

MASK = "***"
#: The JSON-schema mark of a sensitive field (also what the OpenAPI document shows).
MARK = "x-sensitive"


def Sensitive(default: Any = PydanticUndefined, **kwargs: Any) -> Any:  # noqa: N802  (used like pydantic's Field)
    """``pydantic.Field(...)`` for a field holding a user's data."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    return Field(default, json_schema_extra={**extra, MARK: True}, **kwargs)


def sensitive_fields(model: Optional[type[pydantic.BaseModel]]) -> frozenset[str]:
    """The names of *model*'s fields declared with :func:`Sensitive`."""
    if model is None:
        return frozenset()
    return frozenset(name for name, info in model.model_fields.items()
                     if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(MARK))


def mask(values: Any, names: Iterable[str]) -> Any:
    """A copy of the dict *values* with each of *names* it holds replaced by :data:`MASK` (anything else as is)."""
    if not isinstance(values, dict):
        return values
    hidden = [name for name in names if name in values and values[name] is not None]
    if not hidden:
        return values
    return {**values, **dict.fromkeys(hidden, MASK)}


def mask_record(record: dict, arguments: Iterable[str], output: Iterable[str]) -> dict:
    """A task record with its declared sensitive arguments, result keys and progress keys masked."""
    arguments, output = tuple(arguments), tuple(output)
    if not arguments and not output:
        return record
    shown = dict(record)
    if arguments and "kwargs" in shown:
        shown["kwargs"] = mask(shown["kwargs"], arguments)
    for name in ("result", "progress"):
        if output and name in shown:
            shown[name] = mask(shown[name], output)
    return shown
