"""``generate_ai_response``: answer a conversation's new message, grounded in a knowledge base.

A conversation belongs to the user who started it (the task's owner, see
:mod:`pipeline.owners`): a task for another user fails at once, before the
conversation's history is read or anything is written.

The partial reply is published as task progress while it streams
(``progress.text``), so the API's event stream can show it as it is written.
The question and the reply are stored together, keyed by the task id: a
redelivered task that already answered returns the stored reply instead of
asking the model again.
"""

from __future__ import annotations

import time
import uuid
from typing import Optional

import pydantic
from pydantic import Field

from pipeline.context import running_task
from pipeline.errors import PermanentError
from pipeline.knowledge import extra
from pipeline.knowledge.config import get_knowledge_settings
from pipeline.knowledge.text import StoredText
from pipeline.sensitive import Sensitive
from pipeline.task import FromSetting, OwnerOr, task

PROGRESS_INTERVAL_SECONDS = 0.25


class GenerateArgs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    conversation_id: StoredText = Field(..., min_length=1, max_length=200)
    user_message: StoredText = Sensitive(..., min_length=1, max_length=20_000)
    knowledge_base_id: Optional[uuid.UUID] = None


@task(
    queue="ai_high_priority",
    priority=9,
    max_retries=3,
    soft_time_limit=120,
    time_limit=180,
    # Each user starts at most 10 answers a minute, and all users together at most
    # CLAW_AI_GLOBAL_RATE_LIMIT (the model provider's quota), taking turns. A task
    # submitted for nobody in particular is limited per conversation.
    rate_limit_per_key="10/m",
    rate_limit_key=OwnerOr("conversation_id"),
    rate_limit=FromSetting("ai_global_rate_limit"),
    # Browsers (user tokens) may ask, each user at most CLAW_USER_AI_QUOTA a window.
    user_quota=FromSetting("user_ai_quota"),
    args_model=GenerateArgs,
    # The reply (and the text so far, in progress) is the user's.
    sensitive_output=("reply", "sources", "text"),
)
def generate_ai_response(*, conversation_id: str, user_message: str, knowledge_base_id: Optional[str] = None) -> dict:
    """Answer the user's message (with knowledge-base passages when a base is given) and store both."""
    db, llm, retrieval, store = extra.modules("db", "llm", "retrieval", "store")
    current = running_task()
    owner = current.owner
    settings = get_knowledge_settings()
    with db.connection() as conn:
        if current.task_id is not None:
            answered = store.exchange_for_task(conn, current.task_id)
            if answered is not None:
                return _result(answered)
        # Checked here, where it cannot race (the API checks too, to answer at once): nobody reads or
        # writes a conversation another user started, or searches a base their tenant may not read.
        if not store.claim_conversation(conn, conversation_id, owner.user_id, owner.tenant_id):
            raise PermanentError(f"conversation {conversation_id!r} belongs to another user")
        if knowledge_base_id is not None and owner.user_id is not None:
            if not store.get_knowledge_base(conn, knowledge_base_id).readable_by(owner.tenant_id):
                raise PermanentError(f"knowledge base {knowledge_base_id} is not one this user's tenant may read")
        history = store.recent_messages(conn, conversation_id, settings.history_messages)

    hits = []
    if knowledge_base_id is not None:
        current.report_progress(5, "searching the knowledge base")
        hits = retrieval.search(knowledge_base_id, user_message, k=settings.answer_passages, distinct=False)
    passages = [llm.Passage(number, hit.title, hit.text) for number, hit in enumerate(hits, start=1)]
    provider = llm.get_provider(has_knowledge_base=knowledge_base_id is not None, settings=settings)

    current.report_progress(10, "generating", text="")
    publish = _Publisher(current, settings.llm_max_tokens)
    reply = provider.answer(user_message, [llm.Turn(m.role, m.content) for m in history], passages, publish)
    publish.flush()

    exchange = store.Exchange(
        conversation_id=conversation_id,
        task_id=current.task_id,
        question=user_message,
        reply=reply.text,
        sources=[hit.as_source() for hit in hits],
        usage=reply.usage,
        provider=reply.provider,
        model=reply.model,
    )
    with db.connection() as conn:
        return _result(store.save_exchange(conn, exchange))


class _Publisher:
    """``on_delta`` for a provider: publishes the text so far as progress, at most every 0.25 s."""

    def __init__(self, current, max_tokens: int):
        self.current = current
        self.expected_chars = 4 * max_tokens  # a rough upper bound, only for the percentage
        self.text = ""
        self.sent = ""
        self.last = 0.0

    def __call__(self, text_so_far: str) -> None:
        self.text = text_so_far
        if time.monotonic() - self.last >= PROGRESS_INTERVAL_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.text == self.sent:
            return
        percent = 10 + 85 * min(1.0, len(self.text) / self.expected_chars)
        self.current.report_progress(percent, "generating", text=self.text)
        self.sent, self.last = self.text, time.monotonic()


def _result(message) -> dict:
    """The task result of a stored exchange (a ``pipeline.knowledge.store.Message``)."""
    return {
        "reply": message.content,
        "sources": message.sources or [],
        "usage": message.usage or {},
        "provider": message.provider,
        "model": message.model,
        "conversation_id": message.conversation_id,
        "message_id": message.id,
    }
