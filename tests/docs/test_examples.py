"""The examples stream a reply as it is written: async_conversation.py in a terminal, chat.html in Chromium.

The stack's language model is a local server speaking OpenAI's streaming chat-completions protocol that
sends its reply in pieces, 0.4 s apart, so the task publishes the growing text as several progress events
(at most one every 0.25 s) and a client that really streams shows it before the task ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from tests.conftest import ROOT
from tests.docs.conftest import user_environment
from tests.knowledge.conftest import ChatServer, Script, _ChatHandler

EXAMPLE = ROOT / "examples" / "async_conversation.py"
CHAT_PAGE = ROOT / "examples" / "chat.html"
PIECES = ["Refunds ", "are possible ", "within 30 days ", "of purchase; ", "after that, ", "store credit."]
REPLY = "".join(PIECES)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    state = ChatServer(f"http://127.0.0.1:{server.server_address[1]}/v1", [], [])
    server.state = state  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(make_stack, chat_server):
    return make_stack("examples", CLAW_LLM_URL=chat_server.url, CLAW_LLM_MODEL="fake-chat",
                      CLAW_LLM_KEY="sk-docs-example-key")


def test_async_conversation_prints_the_reply_while_it_is_written_then_the_sources(stack, chat_server):
    chat_server.script.append(Script(chunks=PIECES, delay=0.4))
    env = {**user_environment(), "CLAW_API": stack.url, "CLAW_TOKEN": stack.token}
    proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--conversation", "docs-example", "Can I get a refund?"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    arrivals: list[tuple[float, bytes]] = []
    while chunk := os.read(proc.stdout.fileno(), 4096):
        arrivals.append((time.monotonic(), chunk))
    stderr = proc.stderr.read().decode()
    assert proc.wait(30) == 0, stderr
    ended = time.monotonic()

    stdout = b"".join(chunk for _, chunk in arrivals).decode()
    assert stdout == f"{REPLY}\nSources:\n  (none)\n"  # each piece printed once, in order
    first_text = next(at for at, chunk in arrivals if chunk.strip())
    assert ended - first_text > 1.0, "the reply was printed all at once, not as it streamed"
    assert len([chunk for _, chunk in arrivals if chunk.strip()]) >= 3
    assert "[provider openai, model fake-chat" in stderr
    assert chat_server.requests[-1]["body"]["messages"][-1]["content"] == "Can I get a refund?"
    assert chat_server.requests[-1]["auth"] == "Bearer sk-docs-example-key"


def test_async_conversation_reports_a_refused_request_with_exit_code_2(stack):
    env = {**user_environment(), "CLAW_API": stack.url, "CLAW_TOKEN": "not-a-valid-token-at-all"}
    proc = subprocess.run([sys.executable, str(EXAMPLE), "hello"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "the API refused the request: HTTP 401" in proc.stderr


def test_chat_page_served_at_the_api_origin_streams_the_reply_and_shows_sources(stack, chat_server, chromium):
    """Served from the API's origin (as behind a reverse proxy), the page needs no CORS."""
    chat_server.script.append(Script(chunks=PIECES, delay=0.4))
    page = chromium.new_page()
    page.route(f"{stack.url}/chat.html",
               lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8",
                                           body=CHAT_PAGE.read_text(encoding="utf-8")))
    page.goto(f"{stack.url}/chat.html")
    assert page.input_value("#api") == stack.url  # defaults to the page's own origin
    page.fill("#token", stack.token)
    page.click("#load-kb")
    page.wait_for_function("document.getElementById('connection-status').textContent.includes('knowledge base')")
    # Record every text the reply shows, to prove it grew while the task ran.
    page.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => {
            const reply = document.querySelector('.turn.assistant .text');
            if (reply && reply.textContent && window.seen.at(-1) !== reply.textContent) window.seen.push(reply.textContent);
        }).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
    }""")
    page.fill("#message", "Can I get a refund?")
    page.click("#send")
    page.wait_for_function(
        "document.querySelector('.turn.assistant .status')?.textContent.includes('SUCCESS')", timeout=30_000)

    assert page.text_content(".turn.assistant .text") == REPLY
    seen = page.evaluate("window.seen")
    partial = [text for text in seen if text != REPLY]
    assert len(partial) >= 2, seen
    assert all(REPLY.startswith(text) for text in partial), seen
    assert "openai (fake-chat)" in page.text_content(".turn.assistant .status")
    assert page.text_content(".turn.assistant").count("No sources.") == 1
    page.close()


def test_chat_page_opened_from_another_origin_explains_that_the_browser_blocked_it(stack, chromium):
    page = chromium.new_page()
    page.goto(CHAT_PAGE.as_uri())
    page.fill("#api", stack.url)
    page.fill("#token", stack.token)
    page.fill("#message", "hello")
    page.click("#send")
    problem = page.wait_for_selector(".problem", timeout=15_000).text_content()
    assert "no CORS headers" in problem and "same origin as the API" in problem
    page.close()


def test_the_api_sends_no_cors_headers(stack):
    """What the chat page's instructions rely on; if CORS is added, docs/usage.md#chat-page must change."""
    import requests

    answer = requests.options(f"{stack.url}/api/v1/tasks/ai/generate", timeout=10, headers={
        "Origin": "http://localhost:5500", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert "access-control-allow-origin" not in {k.lower() for k in answer.headers}
