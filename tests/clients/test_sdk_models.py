"""The SDK's models and methods are generated from the served API description: they cannot disagree with it."""

from __future__ import annotations

import importlib.util
import re

from tests.conftest import ROOT

SDK = ROOT / "clients" / "python"


def generator():
    spec = importlib.util.spec_from_file_location("claw_sdk_generate", SDK / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sdk_is_what_the_served_openapi_document_generates(api):
    served = api.get("/openapi.json", role=None).json
    expected = generator().render(served)
    actual = (SDK / "claw_client" / "_generated.py").read_text(encoding="utf-8")
    assert actual == expected, (
        "clients/python/claw_client/_generated.py disagrees with /openapi.json: regenerate it with "
        "`.venv/bin/python clients/python/generate.py --app` (and bump the SDK's version if a method changed)"
    )


def test_every_json_operation_has_a_sync_and_an_async_method_and_every_schema_a_model(api):
    import claw_client
    from claw_client.client import AsyncClient, Client

    served = api.get("/openapi.json", role=None).json
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            media = {m for answer in operation["responses"].values() if answer for m in answer.get("content", {})}
            if media - {"application/json"}:
                continue
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", operation["operationId"]).lower()
            assert callable(getattr(Client, name, None)), f"{method.upper()} {path}: Client.{name} missing"
            assert callable(getattr(AsyncClient, name, None)), f"{method.upper()} {path}: AsyncClient.{name} missing"
    for schema in served["components"]["schemas"]:
        assert hasattr(claw_client, schema), schema


def test_a_real_record_validates_against_the_sdk_model_and_keeps_fields_added_later(api, engine):
    from claw_client import TaskRecord

    answer = api.post("/api/v1/tasks/bulk", role="submit",
                      json={"tasks": [{"actor": "echo", "kwargs": {"value": "ok"}}]})
    record = TaskRecord.model_validate(api.get(f"/api/v1/tasks/status/{answer.json['task_ids'][0]}").json)
    assert record.state == "PENDING" and record.actor == "echo"
    newer = TaskRecord.model_validate({**record.model_dump(), "field_from_a_newer_api": 1})
    assert newer.model_extra == {"field_from_a_newer_api": 1}
