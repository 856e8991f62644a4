"""Answer providers against a local OpenAI-style streaming server, and the extractive fallback."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from pipeline.errors import PermanentError, TransientError
from pipeline.knowledge.llm import ExtractiveProvider, OpenAIChatProvider, Passage, Turn, build_messages

from .conftest import Script, free_port

PASSAGES = [Passage(1, "Resetting a forgotten password", "Click \"Forgot password?\" on the sign-in page."),
            Passage(2, "开启两步验证", "进入“安全”页面，点击“开启两步验证”。")]


def provider(server, **options) -> OpenAIChatProvider:
    return OpenAIChatProvider(server.url, "test-model", key=SecretStr("sk-test-123"), **options)


def test_streams_deltas_as_they_arrive_and_returns_usage(chat_server):
    chat_server.script.append(Script(chunks=["Click ", "\"Forgot ", "password?\" [1]"], delay=0.3))
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    reply = provider(chat_server).answer(
        "How do I reset my password?", [Turn("user", "hi"), Turn("assistant", "Hello!")], PASSAGES,
        lambda text: seen.append((time.monotonic() - started, text)),
    )
    assert reply.text == "Click \"Forgot password?\" [1]"
    assert [text for _, text in seen] == ["Click ", "Click \"Forgot ", "Click \"Forgot password?\" [1]"]
    # The first delta was handed over while the server was still sending (it sends one every 0.3 s).
    assert seen[0][0] < seen[-1][0] - 0.4
    assert reply.usage == {"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45}
    assert (reply.provider, reply.model) == ("openai", "test-model")

    request = chat_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test-123"
    body = request["body"]
    assert body["stream"] is True and body["model"] == "test-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert "[1] Resetting a forgotten password" in body["messages"][0]["content"]
    assert "[2] 开启两步验证" in body["messages"][0]["content"]
    assert body["messages"][-1]["content"] == "How do I reset my password?"


def test_rate_limited_is_transient_with_retry_after(chat_server):
    chat_server.script.append(Script(status=429, body={"error": {"message": "Rate limit reached for requests"}},
                                     headers={"Retry-After": "7"}))
    with pytest.raises(TransientError, match=r"HTTP 429: Rate limit reached for requests \(Retry-After: 7s\)"):
        provider(chat_server).answer("q", [], [], lambda text: None)


def test_server_error_is_transient(chat_server):
    chat_server.script.append(Script(status=503, body={"error": {"message": "overloaded"}}))
    with pytest.raises(TransientError, match="HTTP 503: overloaded"):
        provider(chat_server).answer("q", [], [], lambda text: None)


def test_bad_request_is_permanent_with_the_providers_message(chat_server):
    message = "This model's maximum context length is 8192 tokens."
    chat_server.script.append(Script(status=400, body={"error": {"message": message, "type": "invalid_request_error"}}))
    with pytest.raises(PermanentError) as err:
        provider(chat_server).answer("q", [], [], lambda text: None)
    assert message in str(err.value) and "HTTP 400" in str(err.value)


def test_stream_cut_before_done_is_transient(chat_server):
    chat_server.script.append(Script(chunks=["partial"], done=False))
    with pytest.raises(TransientError, match="before \\[DONE\\]"):
        provider(chat_server).answer("q", [], [], lambda text: None)


def test_stalled_stream_times_out_as_transient(chat_server):
    chat_server.script.append(Script(chunks=["a", "b"], delay=1.5))
    with pytest.raises(TransientError, match="stream broke off"):
        provider(chat_server, timeout=0.5).answer("q", [], [], lambda text: None)


def test_unreachable_provider_is_transient():
    unreachable = OpenAIChatProvider(f"http://127.0.0.1:{free_port()}/v1", "m", timeout=2)
    with pytest.raises(TransientError, match="unreachable"):
        unreachable.answer("q", [], [], lambda text: None)


def test_prompt_without_passages_does_not_ask_for_citations():
    messages = build_messages("hi", [], [])
    assert "passages" not in messages[0]["content"]


def test_extractive_quotes_and_cites_passages_and_says_no_model_was_used():
    deltas = []
    reply = ExtractiveProvider().answer("How do I reset my password?", [], PASSAGES, deltas.append)
    assert reply.text.startswith("No language model is configured, so this reply was not written by one.")
    assert "[1] Resetting a forgotten password\n> Click \"Forgot password?\" on the sign-in page." in reply.text
    assert "[2] 开启两步验证" in reply.text
    assert deltas == [reply.text]
    assert (reply.provider, reply.model) == ("extractive", None)


def test_extractive_answers_in_chinese_to_a_chinese_question_and_admits_when_nothing_matched():
    reply = ExtractiveProvider().answer("怎么开启两步验证？", [], PASSAGES[1:], lambda text: None)
    assert reply.text.startswith("当前没有配置语言模型，这条回复不是由模型生成的。")
    assert "没有" in ExtractiveProvider().answer("随便问问", [], [], lambda text: None).text
    no_base = ExtractiveProvider(has_knowledge_base=False).answer("hello", [], [], lambda text: None)
    assert "no knowledge base was given" in no_base.text


def test_a_server_that_ignores_stream_still_gives_an_answer(chat_server):
    chat_server.script.append(Script(body={"model": "m-1", "choices": [{"message": {"content": "Whole reply."}}],
                                           "usage": {"total_tokens": 9}}))
    deltas = []
    reply = provider(chat_server).answer("q", [], [], deltas.append)
    assert (reply.text, reply.model, reply.usage, deltas) == ("Whole reply.", "m-1", {"total_tokens": 9}, ["Whole reply."])


def test_settings_errors_name_the_variable_and_hide_secrets(knowledge_db):
    from pipeline.errors import ConfigError
    from pipeline.knowledge.config import load_knowledge_settings

    with pytest.raises(ConfigError, match="^CLAW_EMBEDDINGS_URL: required when CLAW_EMBEDDER=openai$"):
        load_knowledge_settings(embedder="openai")
    with pytest.raises(ConfigError, match="^CLAW_CHUNK_TOKENS: "):
        load_knowledge_settings(chunk_tokens=8)
    with pytest.raises(ConfigError, match="^CLAW_LLM_MODEL: required"):
        load_knowledge_settings(llm_url="http://127.0.0.1:9/v1")
    settings = load_knowledge_settings(llm_url="http://127.0.0.1:9/v1", llm_model="m", llm_key="sk-very-secret")
    assert settings.resolved_llm_provider == "openai"
    assert "sk-very-secret" not in repr(settings)
    assert load_knowledge_settings().resolved_llm_provider == "extractive"
