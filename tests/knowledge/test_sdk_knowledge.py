"""The SDK's knowledge, search and conversation methods against the real API server and database."""

from __future__ import annotations

import os
import uuid

import pytest
from claw_client import AsyncClient, Client, InvalidRequest, NotFound

from tests.api.conftest import TOKENS, TOKENS_ENV, Server
from tests.app_client import run_async

from .conftest import KNOWLEDGE_PREFIXES

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def knowledge_api(env, engine, knowledge_db):
    knowledge = {k: v for k, v in os.environ.items() if k.startswith(KNOWLEDGE_PREFIXES)}
    server = Server({**env, **knowledge, "CLAW_API_TOKENS": TOKENS_ENV}, workers=1)
    yield server
    server.close()


def test_knowledge_bases_search_and_conversation_pages(knowledge_api, corpus_base, stored_conversation):
    conversation = stored_conversation("sdk-conv")
    with Client(knowledge_api.url, TOKENS["submit"]) as claw:
        name = f"sdk-{uuid.uuid4().hex[:6]}"
        created = claw.create_knowledge_base(name=name)
        assert created.name == name and created.embedding_dim == 384
        listed = {kb.name: kb for kb in claw.list_knowledge_bases().knowledge_bases}
        assert listed[name].documents == 0 and listed[corpus_base.kb.name].chunks == corpus_base.chunks

        found = claw.search_knowledge_base(str(corpus_base.kb.id), q="传到知识库的文件最大能有多大？", k=3)
        assert found.results[0].source == "zh-upload-requirements.md" and found.results[0].score > 0
        with pytest.raises(InvalidRequest) as bad:
            claw.search_knowledge_base(str(corpus_base.kb.id), q="x", k=0)
        assert "k" in bad.value.fields

        page = claw.list_conversation_messages(conversation, limit=4)
        assert [m.content for m in page.messages] == ["q1", "a1", "q2", "a2"] and page.next_cursor
        assert [m.content for m in claw.conversation_messages(conversation, page_size=4)] == \
            ["q1", "a1", "q2", "a2", "q0", "a0"]
        with pytest.raises(NotFound):
            claw.list_conversation_messages("nobody-here")

        deleted = claw.delete_knowledge_base(created.id)
        assert deleted.state == "PENDING" and claw.get(deleted.task_id).actor == "delete_knowledge_base"

    async def from_async():
        # A backend's token: conversations are users' data, not for the read role (conversations:read).
        async with AsyncClient(knowledge_api.url, TOKENS["submit"]) as claw:
            hits = await claw.search_knowledge_base(str(corpus_base.kb.id), q="How do I verify webhook signatures?")
            return hits.results[0].source, [m.content async for m in claw.conversation_messages(conversation)]

    source, messages = run_async(from_async())
    assert source == "en-webhooks.md" and messages == ["q0", "a0", "q1", "a1", "q2", "a2"]
