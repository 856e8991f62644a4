#!/usr/bin/env python3
"""The asynchronous conversation service, from the client's side, with the Python SDK (claw-client).

Submits a user message as a ``generate_ai_response`` task, follows the task's event stream and prints the
answer as it is written (each ``progress`` event carries the reply so far in ``progress.text``), then the
sources it cites.

    .venv/bin/python examples/async_conversation.py --kb "$KB_ID" "How long do I have to ask for a refund?"

Environment: ``CLAW_API`` (default http://127.0.0.1:8000) and ``CLAW_TOKEN`` (default: the dev admin token
``make run`` writes to var/dev-admin-token); the token needs the ``submit`` role. Needs only the SDK
(``pip install ./clients/python``: httpx, httpx-sse, pydantic), not the engine.

The SDK does what this example used to do by hand: the idempotency key (a re-sent submission returns the
same task), resuming the stream with Last-Event-ID when the connection drops or the server ends it, and
sending a refused request (503, 429) again after its Retry-After.

Exit codes: 0 answered, 1 the task failed or was cancelled, 2 bad usage or the API refused the request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

import httpx
from claw_client import ApiError, AsyncClient, ProgressEvent, StateEvent, TaskRecord, WaitingEvent

TOKEN_FILE = Path(__file__).resolve().parent.parent / "var" / "dev-admin-token"


def token_from_env() -> str:
    token = os.environ.get("CLAW_TOKEN", "").strip()
    if not token and TOKEN_FILE.exists():
        token = TOKEN_FILE.read_text().strip()
    if not token:
        sys.exit("set CLAW_TOKEN (a service token with the submit role), or run `make run` to create var/dev-admin-token")
    return token


async def converse(claw: AsyncClient, conversation_id: str, message: str, knowledge_base_id: Optional[str]) -> TaskRecord:
    """Submit the message, print the reply as it grows; return the final task record."""
    accepted = await claw.submit_generate_ai_response(
        conversation_id=conversation_id, user_message=message, knowledge_base_id=knowledge_base_id)
    print(f"[conversation {conversation_id}, task {accepted.task_id}]", file=sys.stderr)
    printed = ""
    async for event in claw.stream(accepted.task_id):
        if isinstance(event.data, ProgressEvent):
            printed = show(printed, event.data.progress.model_extra.get("text"))
        elif isinstance(event.data, WaitingEvent):  # over the actor's rate limit: it starts later, not lost
            when = time.strftime("%H:%M:%S", time.localtime(event.data.eta)) if event.data.eta else "later"
            print(f"[waiting for the rate limit; starts at {when}]", file=sys.stderr)
        elif isinstance(event.data, StateEvent) and event.data.state == "RETRY":
            print("[the attempt failed; it will be retried]", file=sys.stderr)
        elif isinstance(event.data, TaskRecord):
            if event.data.progress:
                printed = show(printed, event.data.progress.model_extra.get("text"))
            if event.final:
                if event.data.state == "SUCCESS":
                    show(printed, event.data.result["reply"])
                print()
                return event.data
    return await claw.get(accepted.task_id)


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


async def main_async(args: argparse.Namespace) -> int:
    async with AsyncClient(os.environ.get("CLAW_API", "http://127.0.0.1:8000"), token_from_env()) as claw:
        try:
            record = await converse(claw, args.conversation, args.message, args.kb)
        except ApiError as exc:
            print(f"the API refused the request: {exc}", file=sys.stderr)
            return 2
        except httpx.TransportError as exc:
            print(f"cannot reach the API: {exc}", file=sys.stderr)
            return 2

    if record.state != "SUCCESS":
        error = record.error
        print(f"task {record.state}: {error.type if error else ''} {error.message if error else ''}".rstrip(),
              file=sys.stderr)
        return 1
    result = record.result
    print("Sources:")
    for number, source in enumerate(result.get("sources") or [], start=1):
        print(f"  [{number}] {source['title']} (document {source['document_id']}, score {source['score']})")
    if not result.get("sources"):
        print("  (none)")
    print(f"[provider {result['provider']}, model {result['model'] or '-'}, {record.runtime_ms} ms]", file=sys.stderr)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Ask a question and stream the answer.")
    parser.add_argument("message", help="the user's message")
    parser.add_argument("--conversation", default=f"example-{uuid.uuid4().hex[:8]}",
                        help="conversation id (default: a new conversation)")
    parser.add_argument("--kb", default=os.environ.get("KB_ID"),
                        help="knowledge base id to ground the answer in (default: $KB_ID, else none)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
