#!/usr/bin/env python3
"""Write ``claw_client/_generated.py`` from the API's OpenAPI document.

    python clients/python/generate.py http://127.0.0.1:8000/openapi.json   # a running API
    python clients/python/generate.py spec.json                            # a saved document
    python clients/python/generate.py --app                                # the app of this checkout

The output has one pydantic model per schema component and, for every JSON
operation, a method on ``_Operations`` (sync) and ``_AsyncOperations``
(async), named after its operationId in snake_case (``getTaskStatus`` ->
``get_task_status``): path parameters positional, query parameters and body
fields keyword-only, the answer parsed into its model. The hand-written
clients (``claw_client/client.py``) subclass those and add what a spec cannot
say: paging iterators, waiting on the event stream, retries.

``tests/clients/test_sdk_models.py`` regenerates from the served document
and fails when the file differs: the SDK can never silently disagree with
the API it calls. Standard library only, so it runs anywhere.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "claw_client" / "_generated.py"
#: Names a field may not have on a pydantic model (they are BaseModel's own).
RESERVED = {"json", "schema", "copy", "dict", "validate", "construct", "fields"}
METHODS = ("get", "post", "put", "patch", "delete")


def load(source: str) -> dict[str, Any]:
    if source == "--app":
        sys.path.insert(0, str(HERE.parent.parent))
        from falcon import testing  # noqa: PLC0415  (only this mode needs the engine and Falcon)

        from api.app import create_app  # noqa: PLC0415
        from pipeline.settings import load_settings  # noqa: PLC0415

        settings = load_settings(auth_disabled=True)
        return testing.TestClient(create_app(settings=settings)).simulate_get("/openapi.json").json
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as answer:
            return json.load(answer)
    return json.loads(Path(source).read_text(encoding="utf-8"))


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def field_name(name: str) -> str:
    clean = re.sub(r"\W", "_", name)
    if keyword.iskeyword(clean) or clean in RESERVED or clean[0].isdigit() or clean.startswith("model_"):
        clean += "_"
    return clean


class Writer:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.schemas: dict[str, Any] = spec.get("components", {}).get("schemas", {})
        self.uses_datetime = False

    # -- types ----------------------------------------------------------------------------------

    def annotation(self, schema: dict[str, Any]) -> str:
        if not schema:
            return "Any"
        if "$ref" in schema:
            return schema["$ref"].rsplit("/", 1)[1]
        if "const" in schema:
            return f"Literal[{schema['const']!r}]"
        if "enum" in schema:
            return "Literal[" + ", ".join(repr(v) for v in schema["enum"]) + "]"
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                parts = [self.annotation(branch) for branch in schema[combinator]]
                unique = list(dict.fromkeys(parts))
                nullable = "None" in unique
                unique = [p for p in unique if p != "None"]
                inner = unique[0] if len(unique) == 1 else "Union[" + ", ".join(unique) + "]"
                return f"Optional[{inner}]" if nullable else inner
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.annotation(schema["allOf"][0])
        kind = schema.get("type")
        if isinstance(kind, list):
            return self.annotation({"anyOf": [{**schema, "type": k} for k in kind]})
        if kind == "string":
            if schema.get("format") == "date-time":
                self.uses_datetime = True
                return "datetime"
            return "str"
        if kind == "integer":
            return "int"
        if kind == "number":
            return "float"
        if kind == "boolean":
            return "bool"
        if kind == "null":
            return "None"
        if kind == "array":
            return f"list[{self.annotation(schema.get('items', {}))}]"
        if kind == "object":
            extra = schema.get("additionalProperties")
            value = self.annotation(extra) if isinstance(extra, dict) else "Any"
            return f"dict[str, {value}]"
        return "Any"

    @staticmethod
    def default(schema: dict[str, Any]) -> str:
        return repr(schema["default"]) if "default" in schema else "None"

    # -- models ---------------------------------------------------------------------------------

    def model(self, name: str, schema: dict[str, Any]) -> str:
        lines = [f"class {name}(_Model):"]
        doc = (schema.get("description") or "").strip()
        if doc:
            lines.append(f"    {repr_doc(doc)}")
            lines.append("")
        required = set(schema.get("required", ()))
        fields = schema.get("properties", {})
        for original, prop in fields.items():
            python = field_name(original)
            annotation = self.annotation(prop)
            options = [] if original in required else [f"default={self.default(prop)}"]
            if python != original:
                options.append(f"alias={original!r}")
            if prop.get("description"):
                options.append(f"description={prop['description']!r}")
            if original not in required and annotation != "Any" and not annotation.startswith("Optional[") and self.default(prop) == "None":
                annotation = f"Optional[{annotation}]"
            value = f" = Field({', '.join(options)})" if options else ""
            lines.append(f"    {python}: {annotation}{value}")
        if not fields:
            lines.append("    pass")
        return "\n".join(lines)

    # -- operations -----------------------------------------------------------------------------

    def operations(self) -> list[dict[str, Any]]:
        found = []
        for path, item in self.spec.get("paths", {}).items():
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                success = {code: answer for code, answer in operation["responses"].items() if code.startswith("2")}
                content_types = {media for answer in success.values() for media in answer.get("content", {})}
                if content_types - {"application/json"}:
                    continue  # text, HTML, files and the event stream: not JSON operations
                found.append({"path": path, "method": method.upper(), **operation, "success": success})
        return found

    def method(self, operation: dict[str, Any], asynchronous: bool) -> str:
        name = snake(operation["operationId"])
        path_params = [p for p in operation.get("parameters", ()) if p["in"] == "path"]
        query_params = [p for p in operation.get("parameters", ()) if p["in"] == "query"]
        body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        body_fields: dict[str, Any] = {}
        body_required: set[str] = set()
        if body_schema is not None:
            resolved = self.schemas[body_schema["$ref"].rsplit("/", 1)[1]]
            body_fields = resolved.get("properties", {})
            body_required = set(resolved.get("required", ()))
        returns = "None"
        for answer in operation["success"].values():
            schema = answer.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                returns = self.annotation(schema)
        arguments = ["self"] + [f"{field_name(p['name'])}: str" for p in path_params]
        keyword_args = []
        for original, prop in sorted(body_fields.items(), key=lambda item: item[0] not in body_required):
            annotation = self.annotation(prop)
            if original in body_required:
                keyword_args.append(f"{field_name(original)}: {annotation}")
            else:
                if not annotation.startswith("Optional[") and annotation != "Any":
                    annotation = f"Optional[{annotation}]"
                keyword_args.append(f"{field_name(original)}: {annotation} = None")
        for param in query_params:
            annotation = self.annotation(param["schema"])
            if not param.get("required"):
                if not annotation.startswith("Optional[") and annotation != "Any":
                    annotation = f"Optional[{annotation}]"
                keyword_args.append(f"{field_name(param['name'])}: {annotation} = None")
            else:
                keyword_args.append(f"{field_name(param['name'])}: {annotation}")
        if keyword_args:
            arguments += ["*", *keyword_args]
        signature = ", ".join(arguments)
        path = operation["path"]
        for param in path_params:
            path = path.replace("{" + param["name"] + "}", "{_quote(" + field_name(param["name"]) + ")}")
        query = "{" + ", ".join(f"{p['name']!r}: {field_name(p['name'])}" for p in query_params) + "}"
        body = ("{" + ", ".join(f"{k!r}: {field_name(k)}" for k in body_fields) + "}") if body_schema is not None else "None"
        model = returns if returns != "None" else "None"
        parse = model if re.fullmatch(r"\w+", model) and model in self.schemas else "None"
        summary = operation.get("summary", "")
        call = (f"self._call({operation['method']!r}, f{path!r}, {operation['operationId']!r}, "
                f"query={query}, body={body}, model={parse})")
        prefix, wait = ("async def", "await ") if asynchronous else ("def", "")
        return (f"    {prefix} {name}({signature}) -> {returns}:\n"
                f"        {repr_doc(summary)}\n"
                f"        return {wait}{call}\n")

    # -- the file -------------------------------------------------------------------------------

    def render(self) -> str:
        models = [self.model(name, schema) for name, schema in sorted(self.schemas.items())]
        operations = sorted(self.operations(), key=lambda op: op["operationId"])
        sync = [self.method(op, False) for op in operations]
        asynchronous = [self.method(op, True) for op in operations]
        submits = {op["operationId"]: op["path"] for op in operations if op["operationId"].startswith("submit")
                   and op["operationId"] != "submitBulk"}
        info = self.spec.get("info", {})
        header = [
            f'"""Generated from the OpenAPI document of {info.get("title", "the API")} {info.get("version", "")}'
            " by clients/python/generate.py: do not edit.\"\"\"",
            "",
            "# ruff: noqa",
            "from __future__ import annotations",
            "",
            "from datetime import datetime" if self.uses_datetime else "",
            "from typing import Any, Literal, Optional, Union",
            "",
            "from pydantic import BaseModel, ConfigDict, Field",
            "",
            "from claw_client._transport import _quote",
            "",
            f"API_VERSION = {info.get('version', '')!r}",
            "#: operationId -> path of every per-actor submit endpoint.",
            f"SUBMIT_PATHS = {json.dumps(submits, indent=4, sort_keys=True)}",
            "",
            "",
            "class _Model(BaseModel):",
            '    """Fields the server adds later are kept (extra="allow"), so an older client reads a newer API."""',
            "",
            '    model_config = ConfigDict(extra="allow", populate_by_name=True)',
        ]
        body = "\n\n\n".join(models)
        ops = ("\n\nclass _Operations:\n    \"\"\"Every JSON operation of the API (sync).\"\"\"\n\n    _call: Any\n\n"
               + "\n".join(sync)
               + "\n\nclass _AsyncOperations:\n    \"\"\"Every JSON operation of the API (async).\"\"\"\n\n    _call: Any\n\n"
               + "\n".join(asynchronous))
        text = "\n".join(line for line in header) + "\n\n\n" + body + "\n" + ops
        # Models refer to each other in any order: resolve the names once all exist.
        text += "\n\n" + "\n".join(f"{name}.model_rebuild()" for name in sorted(self.schemas)) + "\n"
        return re.sub(r"\n{4,}", "\n\n\n", text)


def repr_doc(text: str) -> str:
    text = " ".join(text.split()).replace("\\", "\\\\").replace('"""', "'''")
    return f'"""{text}"""'


def render(spec: dict[str, Any]) -> str:
    return Writer(spec).render()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    OUTPUT.write_text(render(load(argv[0])), encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
