"""The examples stream a reply as it is written: async_conversation.py in a terminal, chat.html in Chromium
(served by examples/chat_backend.py from another origin than the API's, with a user token it mints).

The stack's language model is a local server speaking OpenAI's streaming chat-completions protocol that
sends its reply in pieces, 0.4 s apart, so the task publishes the growing text as several progress events
(at most one every 0.25 s) and a client that really streams shows it before the task ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from tests.conftest import ROOT, free_port
from tests.docs.conftest import user_environment
from tests.knowledge.conftest import ChatServer, Script, _ChatHandler

EXAMPLE = ROOT / "examples" / "async_conversation.py"
CHAT_PAGE = ROOT / "examples" / "chat.html"
CHAT_BACKEND = ROOT / "examples" / "chat_backend.py"
#: The chat example's backend serves the page from here: another origin than the API's, allowed by CORS.
BACKEND_PORT = free_port()
BACKEND_ORIGIN = f"http://127.0.0.1:{BACKEND_PORT}"
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
                      CLAW_LLM_KEY="sk-docs-example-key", CLAW_CORS_ORIGINS=BACKEND_ORIGIN)


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


@pytest.fixture(scope="module")
def chat_backend(stack):
    """examples/chat_backend.py on the port the stack's CLAW_CORS_ORIGINS names, minting with the stack's token."""
    env = {**user_environment(), "CLAW_API": stack.url, "CLAW_TOKEN": stack.token}
    proc = subprocess.Popen([sys.executable, str(CHAT_BACKEND), "--port", str(BACKEND_PORT)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "chat page:" in proc.stdout.readline()
    yield BACKEND_ORIGIN
    proc.terminate()
    proc.wait(10)


def test_chat_page_from_another_origin_streams_the_reply_with_a_user_token_never_a_service_token(
        stack, chat_server, chat_backend, chromium):
    chat_server.script.append(Script(chunks=PIECES, delay=0.4))
    page = chromium.new_page()
    sent = []  # every request the page makes to the API
    page.on("request", lambda request: request.url.startswith(stack.url) and sent.append(request))
    page.goto(f"{chat_backend}/")
    page.fill("#user", "ada")
    page.click("#sign-in")
    page.wait_for_function("document.getElementById('connection-status').textContent.includes('signed in as ada')")
    assert page.input_value("#api") == stack.url
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
    # Every API request came from the backend's origin, with a user token (a JWT), never the service token.
    authorized = [r.all_headers() for r in sent if r.method != "OPTIONS"]
    assert {headers.get("origin") for headers in authorized} == {chat_backend}
    assert authorized and all(headers["authorization"].startswith("Bearer eyJ") for headers in authorized)
    assert not any(stack.token in str(r.all_headers()) for r in sent)
    assert {r.url.split("?")[0].rsplit("/", 1)[-1] for r in sent} >= {"generate", "events", "knowledge"}
    # The task is ada's: her user token's, recorded as such.
    task_id = page.get_attribute(".turn.assistant", "data-task-id")
    import requests

    record = requests.get(f"{stack.url}/api/v1/tasks/status/{task_id}", headers=stack.auth, timeout=10).json()
    assert (record["user_id"], record["submitted_by"]) == ("ada", "user:ada")
    page.close()


def test_chat_page_of_an_origin_the_api_does_not_allow_says_what_to_set(stack, chromium):
    import requests

    minted = requests.post(f"{stack.url}/api/v1/auth/user-tokens", headers=stack.auth, json={"user_id": "eve"}, timeout=10)
    page = chromium.new_page()
    elsewhere = "http://127.0.0.1:9"  # never contacted: the page and its backend are answered here
    page.route(f"{elsewhere}/", lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8",
                                                            body=CHAT_PAGE.read_text(encoding="utf-8")))
    page.route(f"{elsewhere}/session", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({**minted.json(), "api": stack.url})))
    page.goto(f"{elsewhere}/")
    page.fill("#user", "eve")
    page.fill("#message", "hello")
    page.click("#send")
    problem = page.wait_for_selector(".problem", timeout=15_000).text_content()
    assert "CLAW_CORS_ORIGINS" in problem and elsewhere in problem
    page.close()


def test_the_api_sends_cors_headers_to_the_origins_it_lists_only(stack):
    import requests

    for origin, allowed in ((BACKEND_ORIGIN, True), ("http://localhost:5500", False)):
        answer = requests.options(f"{stack.url}/api/v1/tasks/ai/generate", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert (answer.headers.get("access-control-allow-origin") == origin) is allowed
        assert "access-control-allow-credentials" not in {k.lower() for k in answer.headers}
