"""Render docs/configuration.md from the settings classes, so the reference cannot drift.

    .venv/bin/python docs/generate_config_reference.py           # rewrite docs/configuration.md
    .venv/bin/python docs/generate_config_reference.py --check   # exit 1 if it is out of date

Every ``CLAW_*`` variable a process validates is a field of one of the pydantic
settings classes in :data:`SECTIONS`; its name, type, constraints, default and
description are read from the class (never from the environment, so the output
is the same on every machine). A field without a description is rendered as
**(no description)** so the gap is visible in the table.

The few variables read outside the settings objects (the Prometheus
multiprocess directory) are listed in :data:`OUTSIDE_SETTINGS`;
``tests/docs/test_config_reference.py`` fails when the code reads another one.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Optional, Union

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"
REGENERATE = ".venv/bin/python docs/generate_config_reference.py"

#: (title, module, class, who reads it)
SECTIONS = [
    ("Engine", "pipeline.settings", "Settings",
     "Read by every process (API, worker, scheduler, CLI) through `pipeline.settings.get_settings()`."),
    ("Knowledge base and AI responses", "pipeline.knowledge.config", "KnowledgeSettings",
     "Read by processes that touch a knowledge base: the API's knowledge routes and workers running "
     "`vectorize_document`, `update_knowledge_base`, `delete_knowledge_vectors` and `generate_ai_response`."),
    ("Notifications", "pipeline.notifications.config", "NotificationSettings",
     "Read by workers running `send_notification` / `send_notification_batch`, and by the API's inbox routes."),
    ("Scheduler", "scheduler.config", "SchedulerSettings",
     "Read by `claw-pipeline scheduler`. The schedules' timezone is `CLAW_TIMEZONE` (engine)."),
    ("Health check", "pipeline.maintenance.config", "HealthSettings",
     "Read by workers running the `check_task_health` task."),
]

#: Variables read directly from the environment, outside the validated settings: (name, default, description).
OUTSIDE_SETTINGS = [
    ("PROMETHEUS_MULTIPROC_DIR", "unset",
     "A writable directory that aggregates `/metrics` request counters across the API's worker processes. "
     "Unset, `claw-pipeline api` with several workers uses `CLAW_DATA_DIR/api-metrics-<pid>` (removed at exit); "
     "set it to a tmpfs in containers."),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "unset",
     "Turns OpenTelemetry tracing on (API, worker, scheduler): spans go to `<endpoint>/v1/traces` over OTLP/HTTP. "
     "Needs the `[tracing]` extra. Unset, nothing of OpenTelemetry is imported. The SDK's other `OTEL_*` "
     "variables apply (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, ...)."),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "unset", "The full traces URL instead (also turns tracing on)."),
    ("OTEL_SERVICE_NAME", "claw-pipeline-api / -worker / -scheduler", "The `service.name` of this process's spans."),
    ("OTEL_SDK_DISABLED", "false", "`true` keeps tracing off even with an endpoint set."),
]

PREFIX = "CLAW_"


def settings_classes() -> list[tuple[str, type[BaseModel], str]]:
    """(title, class, note) for every section, imported fresh."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return [(title, getattr(importlib.import_module(module), name), note) for title, module, name, note in SECTIONS]


# -- rendering one field -----------------------------------------------------------------------

def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _is_no_decode(field: FieldInfo) -> bool:
    return any(getattr(m, "__name__", type(m).__name__) == "NoDecode" for m in field.metadata)


def _base_type(annotation: Any, field: FieldInfo) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if annotation is SecretStr:
        return "secret string"
    if annotation is bool:
        return "boolean (`true`/`false`)"
    if annotation in (int, float, str):
        return {int: "integer", float: "number", str: "string"}[annotation]
    if origin is list:
        return "comma-separated list" if _is_no_decode(field) else "JSON array"
    if origin is dict:
        return "comma-separated `key:value` pairs" if _is_no_decode(field) else "JSON object"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    return getattr(annotation, "__name__", str(annotation))


#: How each bound a field's metadata can carry reads: its type, the attribute holding the limit, the words before it.
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length ≥"),
    (annotated_types.MaxLen, "max_length", "length ≤"),
)


def _bound(item: object) -> Optional[str]:
    """*item* in words (``≥ 1``) when it is one of the bounds, else None."""
    for kind, attribute, words in _BOUNDS:
        if isinstance(item, kind):
            return f"{words} {getattr(item, attribute)}"
    return None


def _constraints(field: FieldInfo) -> list[str]:
    parts = []
    for item in field.metadata:
        if (bound := _bound(item)) is not None:
            parts.append(bound)
        elif getattr(item, "pattern", None):
            parts.append(f"matches `{item.pattern}`")
    return parts


def type_text(field: FieldInfo) -> str:
    annotation, optional = _strip_optional(field.annotation)
    text = _base_type(annotation, field)
    constraints = _constraints(field)
    if constraints:
        text += " (" + ", ".join(constraints) + ")"
    if optional:
        text += ", optional"
    return text


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if value == "" or value == [] or value == {}:
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, SecretStr):
        return "(secret)"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def description_text(field: FieldInfo) -> str:
    return _cell(field.description) if field.description else "**(no description)**"


def field_row(name: str, field: FieldInfo) -> str:
    variable = f"`{PREFIX}{name.upper()}`"
    return f"| {variable} | {_cell(type_text(field))} | {_cell(default_text(field))} | {description_text(field)} |"


# -- the page ----------------------------------------------------------------------------------

def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by docs/generate_config_reference.py from the settings classes. Do not edit by hand: -->",
        f"<!-- change the Field(description=...) in the code, then run `{REGENERATE}`. -->",
        "",
        "Every setting is an environment variable, read once per process and validated. Engine and scheduler",
        "settings are checked when a process starts: a bad value stops it with one line naming the variable and",
        "exit code 2, e.g. `claw-pipeline: error: CLAW_WORKER_PROCESSES: Input should be greater than or equal to 1`.",
        "Knowledge and notification settings are checked when first used (by a task, an API route or",
        "`claw-pipeline kb`), with the same kind of message naming the variable.",
        "",
        "How values are written: booleans as `true`/`false` (or `1`/`0`); *comma-separated* lists and pairs as",
        "`a,b,c`; *JSON* values as JSON text (quote them for the shell). *Secret* values are never printed in",
        "logs, errors or `repr`. *Unset* means the variable is absent (or, for the knowledge settings, empty).",
        "",
        "Sections: " + ", ".join(f"[{title}](#{_anchor(title)})" for title, _, _, _ in SECTIONS)
        + ", [Outside the settings objects](#outside-the-settings-objects).",
        "",
    ]
    for title, cls, note in settings_classes():
        lines += [f"## {title}", "", f"`{cls.__module__}.{cls.__name__}`. {note}", "",
                  "| Variable | Type | Default | Description |", "|---|---|---|---|"]
        lines += [field_row(name, field) for name, field in cls.model_fields.items()]
        lines.append("")
    lines += [
        "## Outside the settings objects",
        "",
        "Read directly from the environment (not validated by the settings classes):",
        "",
        "| Variable | Default | Description |",
        "|---|---|---|",
        *[f"| `{name}` | {default} | {_cell(text)} |" for name, default, text in OUTSIDE_SETTINGS],
        "",
        "`docker compose` reads a few more (`RABBITMQ_APP_USER`, `RABBITMQ_APP_PASSWORD`, `POSTGRES_APP_USER`,",
        "`POSTGRES_APP_PASSWORD`, `REDIS_PASSWORD`, `GRAFANA_ADMIN_PASSWORD`, `CLAW_IMAGE_TAG`, `CLAW_API_PORT`, ...)",
        "to build the variables above; they are listed in [`.env.example`](../.env.example). The application",
        "connects with those least-privilege users; the administrators' `RABBITMQ_USER`/`RABBITMQ_PASSWORD` and",
        "`POSTGRES_PASSWORD` go to the brokers' own containers only.",
        "",
    ]
    return "\n".join(lines)


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c == "-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date; run: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
