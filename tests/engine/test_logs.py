"""Structured logs: CLAW_LOG_FORMAT=json writes one JSON object per line, and a worker's lines about a task carry
its task id, actor, worker and the id of the API request that submitted it; --log-level on every command."""

from __future__ import annotations

import argparse
import json
import logging

from pipeline.cli import build_parser
from pipeline.observability import logs
from tests.api.conftest import SERVICE_TOKENS, Api
from tests.conftest import wait_for_state, wait_until


def test_worker_lines_are_json_with_the_task_and_request_ids(start_worker, engine, settings):
    from api.app import create_app  # the API app, in this test only

    worker = start_worker("--log-level", "info", extra_env={"CLAW_LOG_FORMAT": "json"})
    api = Api(create_app(engine, settings.model_copy(update={"api_tokens": SERVICE_TOKENS})))
    answer = api.post("/api/v1/tasks/bulk", role="submit", headers={"X-Request-ID": "req-logs-7"},
                      json={"tasks": [{"actor": "always_fails", "kwargs": {"message": "logged"}}]})
    task_id = answer.json["task_ids"][0]
    wait_for_state(engine, task_id, "FAILURE")

    def task_lines():
        lines = [json.loads(line) for line in worker.output().splitlines() if line.strip()]  # every line is JSON
        return [line for line in lines if line["task_id"] == task_id]

    lines = wait_until(lambda: len(task_lines()) >= 3 and task_lines(), 20, message="the task's log lines")
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "message", "task_id", "actor", "request_id", "worker"}
        assert line["request_id"] == "req-logs-7" and line["actor"] == "always_fails"
        assert line["worker"] and line["worker"].endswith(tuple("0123456789"))
    assert any("logged" in line.get("exception", "") + line["message"] for line in lines)
    assert any(line["level"] == "INFO" and "consuming" in line["message"]
               for line in map(json.loads, filter(str.strip, worker.output().splitlines())))


def test_the_json_formatter_writes_the_context_of_the_code_that_logs(capsys):
    handler = logs.make_handler("json")
    logger = logging.getLogger("tests.logs.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = logs.bind(request_id="r-1", task_id="t-1", actor="echo")
        logger.warning("with context %s", "一")
        logs.reset(token)
        logger.warning("without")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (first["message"], first["request_id"], first["task_id"], first["actor"]) == ("with context 一", "r-1", "t-1", "echo")
    assert second["request_id"] is None and second["level"] == "WARNING" and second["logger"] == "tests.logs.json"


def test_every_command_takes_log_level():
    def walk(parser: argparse.ArgumentParser, path: str):
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")

    parsers = list(walk(build_parser(), "claw-pipeline"))
    assert len(parsers) > 15
    for path, parser in parsers:
        assert "--log-level" in parser._option_string_actions, path
    assert build_parser().parse_args(["worker", "--log-level", "debug"]).log_level == "DEBUG"
    assert build_parser().parse_args(["--log-level", "warning", "status", "x"]).log_level == "WARNING"


