"""generate_ai_response end to end: history, retrieval, provider, streaming progress, storage."""

from __future__ import annotations

import uuid

import pytest

from .conftest import Script


@pytest.fixture
def conversation_id() -> str:
    return f"conv-{uuid.uuid4().hex[:8]}"


def _messages(conversation_id: str) -> list:
    from pipeline.knowledge import store
    from pipeline.knowledge.db import connection

    with connection() as conn:
        return store.list_messages(conn, conversation_id, 100)


def test_extractive_answer_cites_the_right_document_and_is_stored_with_the_task_id(
    corpus_base, task_context, conversation_id
):
    from pipeline.actors.ai import generate_ai_response

    with task_context("generate_ai_response") as running:
        result = generate_ai_response(conversation_id=conversation_id, user_message="接口一直返回 429 是怎么回事？",
                                      knowledge_base_id=str(corpus_base.kb.id))
    assert result["provider"] == "extractive" and result["model"] is None
    assert result["reply"].startswith("当前没有配置语言模型")
    assert result["sources"][0]["document_id"] == corpus_base.doc_ids["en-rate-limits.md"]
    assert set(result["sources"][0]) == {"document_id", "source", "title", "chunk_id", "score"}
    assert result["sources"][0]["source"] == "en-rate-limits.md"
    assert "[1] API rate limits and HTTP 429" in result["reply"]
    assert running.progress()["text"] == result["reply"]

    stored = _messages(conversation_id)
    assert [(m.role, m.task_id) for m in stored] == [("user", running.ctx.task_id), ("assistant", running.ctx.task_id)]
    assert stored[1].content == result["reply"] and stored[1].sources == result["sources"]


def test_redelivered_task_returns_the_stored_reply_without_answering_twice(
    corpus_base, task_context, conversation_id, chat_server, knowledge_env
):
    from pipeline.actors.ai import generate_ai_response

    knowledge_env(CLAW_LLM_URL=chat_server.url, CLAW_LLM_MODEL="test-model")
    chat_server.script.append(Script(chunks=["Use ", "the link."]))
    task_id = str(uuid.uuid4())
    with task_context("generate_ai_response", task_id=task_id):
        first = generate_ai_response(conversation_id=conversation_id, user_message="Forgot my password")
    with task_context("generate_ai_response", task_id=task_id, attempt=2):
        again = generate_ai_response(conversation_id=conversation_id, user_message="Forgot my password")
    assert again == first
    assert len(chat_server.requests) == 1
    assert len(_messages(conversation_id)) == 2


def test_streamed_reply_is_published_as_progress_and_history_is_sent(
    corpus_base, task_context, conversation_id, chat_server, knowledge_env
):
    from pipeline.actors.ai import generate_ai_response

    knowledge_env(CLAW_LLM_URL=chat_server.url, CLAW_LLM_MODEL="test-model", CLAW_LLM_KEY="sk-abc")
    chat_server.script.append(Script(chunks=["Hello!"]))
    with task_context("generate_ai_response"):
        generate_ai_response(conversation_id=conversation_id, user_message="Hi there")

    chat_server.script.append(Script(chunks=["在“安全”页面", "开启两步验证，", "然后扫描二维码。[1]"], delay=0.35))
    with task_context("generate_ai_response") as running:
        result = generate_ai_response(conversation_id=conversation_id, user_message="How do I turn on two-step verification with an authenticator app?",
                                      knowledge_base_id=str(corpus_base.kb.id))
        texts = [event.get("text") for event in running.events() if event.get("text")]
    assert result["reply"] == "在“安全”页面开启两步验证，然后扫描二维码。[1]"
    assert result["usage"]["total_tokens"] == 45 and result["model"] == "test-model"
    assert result["sources"][0]["document_id"] == corpus_base.doc_ids["zh-two-factor.md"]
    # The partial reply was published while it grew, ending with the whole text.
    assert texts[0] == "在“安全”页面" and texts[-1] == result["reply"] and len(texts) >= 3

    sent = chat_server.requests[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "Hi there"), ("assistant", "Hello!"),
        ("user", "How do I turn on two-step verification with an authenticator app?")]
    assert "开启两步验证" in sent[0]["content"]
    assert chat_server.requests[-1]["auth"] == "Bearer sk-abc"
    assert [m.role for m in _messages(conversation_id)] == ["user", "assistant", "user", "assistant"]


def test_user_message_length_is_validated():
    from pipeline.actors.ai import generate_ai_response
    from pipeline.errors import InvalidArguments

    with pytest.raises(InvalidArguments) as err:
        generate_ai_response.validate_kwargs({"conversation_id": "c", "user_message": "x" * 20_001})
    assert "user_message" in err.value.fields
    with pytest.raises(InvalidArguments):
        generate_ai_response.validate_kwargs({"conversation_id": "c", "user_message": ""})
