#!/usr/bin/env python3
"""The asynchronous conversation service, from the client's side.

Submits a user message as a ``generate_ai_response`` task, follows the task's
server-sent events (``GET /api/v1/tasks/{task_id}/events``) and prints the answer
as it is written (each ``progress`` event carries the reply so far in
``progress.text``), then the sources it cites.

    .venv/bin/python examples/async_conversation.py --kb "$KB_ID" "How long do I have to ask for a refund?"

Environment: ``CLAW_API`` (default http://127.0.0.1:8000) and ``CLAW_TOKEN``
(default: the dev admin token ``make run`` writes to var/dev-admin-token); the
token needs the ``submit`` role. Only ``requests`` is needed.

Exit codes: 0 answered, 1 the task failed or was cancelled, 2 bad usage or the
API refused the request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import requests

FINAL_STATES = {"SUCCESS", "FAILURE", "CANCELLED"}
TOKEN_FILE = Path(__file__).resolve().parent.parent / "var" / "dev-admin-token"


def token_from_env() -> str:
    token = os.environ.get("CLAW_TOKEN", "").strip()
    if not token and TOKEN_FILE.exists():
        token = TOKEN_FILE.read_text().strip()
    if not token:
        sys.exit("set CLAW_TOKEN (an API token with the submit role), or run `make run` to create var/dev-admin-token")
    return token


def sse_events(response: requests.Response) -> Iterator[tuple[str, dict]]:
    """(event name, data) pairs from a text/event-stream body; comments (keep-alives) are skipped."""
    name, data = "message", []
    for line in response.iter_lines(decode_unicode=True):
        if line is None:
            continue
        if line == "":  # a blank line ends an event
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


class Conversation:
    def __init__(self, api: str, token: str):
        self.api = api.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def ask(self, conversation_id: str, message: str, knowledge_base_id: Optional[str]) -> str:
        """Submit the message; returns the task id.

        The idempotency key makes a re-sent request (after a timeout, say) return
        the same task instead of answering twice.
        """
        body = {"conversation_id": conversation_id, "user_message": message,
                "idempotency_key": f"{conversation_id}:{uuid.uuid4()}"}
        if knowledge_base_id:
            body["knowledge_base_id"] = knowledge_base_id
        response = self.session.post(f"{self.api}/api/v1/tasks/ai/generate", json=body, timeout=30)
        if response.status_code != 202:
            raise ApiRefused(response)
        return response.json()["task_id"]

    def follow(self, task_id: str) -> dict:
        """Print the reply as it grows; return the final task record.

        The stream ends when the task does (or after 10 minutes; then it is opened again).
        """
        printed = ""
        while True:
            url = f"{self.api}/api/v1/tasks/{task_id}/events"
            with self.session.get(url, stream=True, timeout=(10, 60)) as response:
                if response.status_code != 200:
                    raise ApiRefused(response)
                for event, data in sse_events(response):
                    if event == "progress":
                        printed = show(printed, data["progress"].get("text"))
                    elif event == "waiting":  # over the actor's rate limit: it starts later, not lost
                        when = time.strftime("%H:%M:%S", time.localtime(data["eta"])) if data.get("eta") else "later"
                        print(f"[waiting for the rate limit; starts at {when}]", file=sys.stderr)
                    elif event == "state" and data.get("state") == "RETRY":
                        print("[the attempt failed; it will be retried]", file=sys.stderr)
                    elif event == "record" and data is not None:
                        if data.get("progress"):
                            printed = show(printed, data["progress"].get("text"))
                        if data["state"] in FINAL_STATES:
                            if data["state"] == "SUCCESS":
                                show(printed, data["result"]["reply"])
                            print()
                            return data


def show(printed: str, text: Optional[str]) -> str:
    """Print what *text* adds to what is already on screen; return what is on screen now."""
    if not text or text == printed:
        return printed
    if text.startswith(printed):
        sys.stdout.write(text[len(printed):])
    else:  # the model rewrote its reply: start a new line with the whole text
        sys.stdout.write("\n" + text)
    sys.stdout.flush()
    return text


class ApiRefused(Exception):
    def __init__(self, response: requests.Response):
        try:
            detail = response.json()["error"]["description"]
        except (ValueError, KeyError, TypeError):
            detail = response.text[:200]
        super().__init__(f"HTTP {response.status_code}: {detail}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Ask a question and stream the answer.")
    parser.add_argument("message", help="the user's message")
    parser.add_argument("--conversation", default=f"example-{uuid.uuid4().hex[:8]}",
                        help="conversation id (default: a new conversation)")
    parser.add_argument("--kb", default=os.environ.get("KB_ID"),
                        help="knowledge base id to ground the answer in (default: $KB_ID, else none)")
    args = parser.parse_args(argv)

    chat = Conversation(os.environ.get("CLAW_API", "http://127.0.0.1:8000"), token_from_env())
    try:
        task_id = chat.ask(args.conversation, args.message, args.kb)
        print(f"[conversation {args.conversation}, task {task_id}]", file=sys.stderr)
        record = chat.follow(task_id)
    except ApiRefused as exc:
        print(f"the API refused the request: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:
        print(f"cannot reach the API: {exc}", file=sys.stderr)
        return 2

    if record["state"] != "SUCCESS":
        error = record.get("error") or {}
        print(f"task {record['state']}: {error.get('type', '')} {error.get('message', '')}".rstrip(), file=sys.stderr)
        return 1
    result = record["result"]
    print("Sources:")
    for number, source in enumerate(result.get("sources") or [], start=1):
        print(f"  [{number}] {source['title']} (document {source['document_id']}, score {source['score']})")
    if not result.get("sources"):
        print("  (none)")
    print(f"[provider {result['provider']}, model {result['model'] or '-'}, {record['runtime_ms']} ms]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
