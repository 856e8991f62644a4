"""docs/usage.md, run for real, and checked against the code it describes.

* Every ``bash`` and ``python`` block runs in order against a fresh stack started the way the page tells
  readers to start it for the examples (``CLAW_TASK_MODULES=examples.report_tasks``, the ``reports`` queue
  consumed), with the stack's settings in the environment as a reader's shell would have them.
* Every API route is in the page's endpoint table, and the built-in task table matches the declarations.
* The page's ``@task`` example is examples/report_tasks.py verbatim.
"""

from __future__ import annotations

import re
import shutil

import pytest

from api.auth import Access

from tests.conftest import ROOT
from tests.docs.conftest import fenced_blocks, run_blocks, user_environment

PAGE = ROOT / "docs" / "usage.md"
EXAMPLE_MODULE = ROOT / "examples" / "report_tasks.py"
WORKER_QUEUES = "ai_high_priority,knowledge_default,notification_default,default,reports"
#: First lines of the blocks the test does not run (long-running processes, Docker, stopping the stack).
EXPECTED_NORUN = [
    "make run    # .venv, install, then API + worker + scheduler; prints the URLs and a dev admin token",
    "export PYTHONPATH=. CLAW_TASK_MODULES=examples.report_tasks",
    "cp .env.example .env                       # then set every password and the API tokens",
    "PYTHONPATH=. CLAW_TASK_MODULES=examples.report_tasks .venv/bin/claw-pipeline worker --queues reports --processes 2 --threads 4",
    "CLAW_CORS_ORIGINS=http://127.0.0.1:8080 make run        # the API, allowing the page's origin",
    "pip install ./clients/python      # into the calling service's environment (make install puts it in .venv)",
    "CLAW_WORKER_METRICS_PORT=9191 .venv/bin/claw-pipeline worker --queues reports &",
    "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318 .venv/bin/claw-pipeline run",
    "claw-pipeline worker --queues ai_high_priority --processes 2 --threads 8",
    "kill -TERM <supervisor pid>                       # or Ctrl-C, or `docker compose stop worker-ai`",
    'CLAW_API_TOKENS="ops:Xk3...:admin,billing:sha256=9f86d081884c7d65...:submit,chat:Zp81...:tasks:submit:generate_ai_response+users:mint"',
]

pytestmark = pytest.mark.timeout(300)


def page_text() -> str:
    return PAGE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def stack(make_stack):
    # What the page's "follow the examples" block exports before `make run`.
    return make_stack("usage", CLAW_TASK_MODULES="examples.report_tasks", CLAW_WORKER_QUEUES=WORKER_QUEUES,
                      PYTHONPATH=".")


def test_the_blocks_not_run_are_exactly_the_expected_ones():
    norun = [b.code.split("\n")[0] for b in fenced_blocks(PAGE) if b.info.endswith("norun")]
    assert norun == EXPECTED_NORUN


def test_the_follow_along_block_matches_what_the_test_stack_gets():
    block = next(b.code for b in fenced_blocks(PAGE) if b.code.startswith("export PYTHONPATH=. CLAW_TASK_MODULES"))
    assert f"export CLAW_WORKER_QUEUES={WORKER_QUEUES}\n" in block


def test_every_usage_block_runs_in_order_against_the_stack(stack, tmp_path):
    if shutil.which("jq") is None:
        pytest.fail("the page's examples use jq: install it (apt-get install jq)")
    env = {**user_environment(), **stack.settings_env, "CLAW_API": stack.url, "CLAW_TOKEN": stack.token}
    del env["CLAW_API_TOKENS"]  # a reader's shell has the token, not the API's token list
    results = run_blocks(fenced_blocks(PAGE), env, tmp_path, PAGE.name)
    for r in results:  # shown with -s or on failure: the real output, for the page's text blocks
        print(f"--- {PAGE.name} line {r.block.line} ({r.block.info}, {r.seconds:.1f}s)\n{r.stdout}{r.stderr}")
    outputs = "\n".join(r.stdout for r in results)
    assert "month 3 of 3" in outputs  # the event stream of a report
    assert '"requeued":1' in outputs
    assert "2 worker process(es) received restart" in outputs


def test_every_api_route_is_in_the_endpoint_table():
    from api.auth import responders
    from api.routes import route_table
    from pipeline.settings import load_settings

    text = page_text()
    documented = set(re.findall(r"^\| `((?:GET|POST|PATCH|PUT|DELETE) [^`]+)` \|", text, re.MULTILINE))
    routes = [(route.path, route.resource) for route in route_table(
        None, load_settings(), metrics=None, openapi=_OpenApi(), queue_stats=None) if route.documented]
    missing = []
    for path, resource in routes:
        if path == "/docs/assets/{name}":
            continue  # the docs page's own files, mentioned next to /docs
        for method in responders(resource):
            if f"{method} {path}" not in documented:
                missing.append(f"{method} {path}")
    assert not missing, f"routes missing from the endpoint table of docs/usage.md: {missing}"
    assert len(documented) == sum(len(responders(r)) for p, r in routes if p != "/docs/assets/{name}")


class _OpenApi:
    access = {"GET": Access(None, users=True)}

    def on_get(self, req, resp):  # pragma: no cover - only its responders are listed
        pass


def test_the_builtin_task_table_matches_the_declarations():
    import pipeline.actors  # noqa: F401  (declares the built-in tasks)
    from pipeline.task import REGISTRY

    rows = re.findall(r"^\| `([a-z_]+)` \| `([a-z_]+)` \| (\d) \| (\d) \| (\d+) / (\d+) \| ([^|]+) \|", page_text(),
                      re.MULTILINE)
    table = {name: row for name, *row in rows}
    builtin = {name: spec for name, spec in REGISTRY.items() if spec.fn.__module__.startswith("pipeline.actors")}
    assert set(table) == set(builtin)
    for name, spec in builtin.items():
        policy = spec.policy
        expected = [policy.queue, str(policy.priority), str(policy.max_retries), f"{policy.soft_time_limit:g}",
                    f"{policy.time_limit:g}", _rate_cell(policy)]
        assert [cell.strip() for cell in table[name]] == expected, name


def _rate_cell(policy) -> str:
    from pipeline.registry import OwnerOr

    if policy.rate_limit_per_key:
        key = policy.rate_limit_key
        per = f"user (else `{key.argument}`)" if isinstance(key, OwnerOr) else f"`{key}`"
        return f"{policy.rate_limit_per_key} per {per}, `{policy.rate_limit}` in all"
    return str(policy.rate_limit or "–")


def test_the_task_example_on_the_page_is_examples_report_tasks():
    blocks = [b.code for b in fenced_blocks(PAGE) if b.info == "python" and "@task(" in b.code]
    assert blocks == [EXAMPLE_MODULE.read_text(encoding="utf-8")]
