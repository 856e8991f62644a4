"""docs/quickstart.md, run for real: every bash and python block, in order, against a fresh stack.

The stack is what ``make run`` starts (``claw-pipeline run``: API, worker, scheduler) with its own Redis
namespace, queue prefix and database; the blocks get its address and token through ``CLAW_API`` and
``CLAW_TOKEN``, the two variables the page's first block defines (defaulting to what ``make run`` gives).
No language model is configured, exactly as on the page: answers come from the extractive provider.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.docs.conftest import fenced_blocks, run_blocks, user_environment

PAGE = ROOT / "docs" / "quickstart.md"
#: The only blocks the test may skip: starting the stack, which the test does itself.
EXPECTED_NORUN = [
    "git clone <claw-pipeline repository URL> claw-pipeline\ncd claw-pipeline\nmake run\n",
]

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def stack(make_stack):
    return make_stack("quickstart")


def test_the_only_blocks_not_run_are_the_documented_norun_ones():
    blocks = fenced_blocks(PAGE)
    assert [b.code for b in blocks if b.info.endswith("norun")] == EXPECTED_NORUN
    assert [b.info for b in blocks if b.runs].count("bash") >= 6
    assert [b.info for b in blocks if b.runs][-1] == "python"  # the page ends by reading the reply


def test_every_quickstart_block_runs_in_order_and_the_last_prints_the_answer(stack, tmp_path):
    assert (ROOT / ".venv" / "bin" / "python").exists(), "the page runs .venv/bin/python (`make install` creates it)"
    env = {**user_environment(), "CLAW_API": stack.url, "CLAW_TOKEN": stack.token}
    results = run_blocks(fenced_blocks(PAGE), env, tmp_path, PAGE.name)

    ready = next(r for r in results if "/ready" in r.block.code)
    assert '"status":"ready"' in ready.stdout
    vectorized = next(r for r in results if "/status/$DOC_TASK" in r.block.code)
    assert vectorized.stdout.startswith("SUCCESS") and "'status': 'vectorized'" in vectorized.stdout
    asked = next(r for r in results if "ai/generate" in r.block.code)
    assert "event: progress" in asked.stdout and '"state":"SUCCESS"' in asked.stdout
    assert '"text":"No language model is configured' in asked.stdout  # the reply, streamed as progress
    example = next(r for r in results if "examples/async_conversation.py" in r.block.code)
    assert "After 30 days we offer store credit" in example.stdout
    assert "Sources:\n  [1] Billing and shipping" in example.stdout

    final = results[-1]
    assert final.block.info == "python"
    assert final.stdout.startswith("No language model is configured, so this reply was not written by one.")
    assert "[1] Billing and shipping\n> You can ask for a full refund within 30 days of purchase." in final.stdout
    assert "user: 'How long do I have to ask for a refund?'" in final.stdout
    assert "user: 'Can I still get my money back after six weeks?'" in final.stdout
    for r in results:  # shown with -s or on failure: the real output, for the page's text blocks
        print(f"--- {PAGE.name} line {r.block.line} ({r.block.info}, {r.seconds:.1f}s)\n{r.stdout}{r.stderr}")
