"""The HTTP resources (mounted on a bare Falcon app) and the operator commands."""

from __future__ import annotations

import io
import uuid

import falcon
import falcon.asgi
import falcon.testing
import psycopg
import pytest
from rich.console import Console

from .conftest import CORPUS
from tests.app_client import AppClient


class AsEveryone:
    """What the API's auth middleware does for an admin with every scope (these resources read the caller)."""

    async def process_request(self, req, resp):
        from api.caller import OPEN

        req.context.caller = OPEN


@pytest.fixture
def api():
    from api.resources.knowledge import ConversationMessagesResource, KnowledgeBasesResource, KnowledgeSearchResource

    app = falcon.asgi.App(middleware=[AsEveryone()])
    app.add_route("/api/v1/knowledge", KnowledgeBasesResource())
    app.add_route("/api/v1/knowledge/{kb_id}/search", KnowledgeSearchResource())
    app.add_route("/api/v1/conversations/{conversation_id}/messages", ConversationMessagesResource())
    return AppClient(app)


def test_create_and_list_bases(api, knowledge_db):
    from pipeline.knowledge import store

    name = f"api-{uuid.uuid4().hex[:6]}"
    created = api.simulate_post("/api/v1/knowledge", json={"name": name})
    assert created.status_code == 201
    assert (created.json["embedder_model"], created.json["embedding_dim"]) == ("multilingual-e5-small-q4", 384)
    again = api.simulate_post("/api/v1/knowledge", json={"name": name})
    assert again.status_code == 200 and again.json["id"] == created.json["id"]
    listed = {kb["name"]: kb for kb in api.simulate_get("/api/v1/knowledge").json["knowledge_bases"]}
    assert listed[name]["documents"] == 0 and listed[name]["id"] == created.json["id"]
    with psycopg.connect(knowledge_db) as conn:
        indexes = {name for (name,) in conn.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s)",
                                                    (store.index_names(created.json["id"]),))}
        assert indexes == {store.index_name(created.json["id"], script) for script in store.SCRIPTS}

    bad = api.simulate_post("/api/v1/knowledge", json={"name": ""})
    assert bad.status_code == 422 and bad.json["description"].startswith("name:")
    assert api.simulate_post("/api/v1/knowledge", json={"name": "x", "extra": 1}).status_code == 422


def test_search_endpoint_returns_ranked_distinct_documents(api, corpus_base):
    response = api.simulate_get(f"/api/v1/knowledge/{corpus_base.kb.id}/search",
                                params={"q": "传到知识库的文件最大能有多大？", "k": "3"})
    assert response.status_code == 200
    body = response.json
    assert [r["source"] for r in body["results"]][0] == "zh-upload-requirements.md"
    assert len({r["document_id"] for r in body["results"]}) == 3
    assert set(body["results"][0]) >= {"chunk_id", "document_id", "title", "text", "score", "similarity"}


@pytest.mark.parametrize("params, field", [({"q": "x", "k": "0"}, "k"), ({"q": "x", "k": "many"}, "k"),
                                           ({"k": "3"}, "q"), ({"q": "x" * 2001}, "q")])
def test_search_endpoint_names_the_bad_parameter(api, corpus_base, params, field):
    response = api.simulate_get(f"/api/v1/knowledge/{corpus_base.kb.id}/search", params=params)
    assert response.status_code == 400
    assert response.json["title"] == "Invalid query parameter"
    assert response.json["description"].startswith(f"{field}:")


def test_search_endpoint_bad_and_unknown_base(api, knowledge_db):
    bad = api.simulate_get("/api/v1/knowledge/not-a-uuid/search", params={"q": "x"})
    assert bad.status_code == 400 and bad.json["description"].startswith("kb_id:")
    unknown = api.simulate_get(f"/api/v1/knowledge/{uuid.uuid4()}/search", params={"q": "x"})
    assert unknown.status_code == 404


def test_messages_endpoint_pages_backwards(api, stored_conversation):
    conversation = stored_conversation()
    first = api.simulate_get(f"/api/v1/conversations/{conversation}/messages", params={"limit": "4"})
    assert first.status_code == 200
    assert [m["content"] for m in first.json["messages"]] == ["q1", "a1", "q2", "a2"]
    older = api.simulate_get(f"/api/v1/conversations/{conversation}/messages",
                             params={"limit": "4", "before": str(first.json["next_before"])})
    assert [m["content"] for m in older.json["messages"]] == ["q0", "a0"]
    assert older.json["next_before"] is None
    assert older.json["messages"][1]["role"] == "assistant" and older.json["messages"][1]["task_id"]

    assert api.simulate_get("/api/v1/conversations/nobody/messages").status_code == 404
    bad = api.simulate_get(f"/api/v1/conversations/{conversation}/messages", params={"limit": "1000"})
    assert bad.status_code == 400 and bad.json["description"].startswith("limit:")


def test_ingest_submits_every_file_follows_them_and_lists_failures(tmp_path_factory, kb_engine, start_kb_worker):
    from pipeline.knowledge import cli, retrieval, store
    from pipeline.knowledge.db import connection

    tmp_path, elsewhere = tmp_path_factory.mktemp("docs"), tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "secret.md").write_text("the root password is hunter2", encoding="utf-8")
    (tmp_path / "guides").mkdir()
    for name in ("en-webhooks.md", "zh-sso.md"):
        (tmp_path / "guides" / name).write_text((CORPUS / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("Support is open from 9:00 to 18:00 on weekdays.", encoding="utf-8")
    (tmp_path / "broken.txt").write_bytes(b"\xff\xfe not utf-8 \xc3")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "linked-secret.md").symlink_to(elsewhere / "secret.md")  # links leading out are not followed
    (tmp_path / "linked-folder").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "guides" / "same-notes.txt").symlink_to(tmp_path / "notes.txt")  # a link inside is
    start_kb_worker()
    name = f"ingest-{uuid.uuid4().hex[:6]}"
    output = io.StringIO()

    assert cli.ingest(tmp_path, name, poll_interval=0.2, console=Console(file=output, width=200)) == 1
    text = output.getvalue()
    assert "4 vectorized, 0 unchanged, 3 failed" in text
    assert "broken.txt" in text and "cannot read" in text
    assert "linked-secret.md" in text and "linked-folder/" in text and "outside the folder" in text
    with connection() as conn:
        kb = store.find_knowledge_base(conn, name)
        sources = sorted(d.source for d in store.list_documents(conn, kb.id))
        stored = conn.execute("SELECT count(*) FROM documents WHERE content LIKE '%hunter2%'").fetchone()[0]
    assert sources == ["guides/en-webhooks.md", "guides/same-notes.txt", "guides/zh-sso.md", "notes.txt"]
    assert stored == 0
    assert retrieval.search(kb.id, "When is support open?", 1)[0].source.endswith("notes.txt")

    again = io.StringIO()
    cli.ingest(tmp_path, name, poll_interval=0.2, console=Console(file=again, width=200))
    assert "0 vectorized, 4 unchanged, 3 failed" in again.getvalue()  # content hashes unchanged

    found = io.StringIO()
    assert cli.search(name, "How do I verify webhook signatures?", 2, console=Console(file=found, width=200)) == 0
    assert found.getvalue().index("Verifying webhook signatures") < found.getvalue().index("配置企业单点登录")
    assert cli.search("no-such-base", "x", console=Console(file=io.StringIO())) == 1


def test_delete_endpoint_removes_a_whole_base_through_a_worker_task(kb_engine, start_kb_worker, new_base, knowledge_db):
    from api.resources.knowledge import KnowledgeBaseResource, KnowledgeSearchResource
    from pipeline.actors.knowledge import delete_knowledge_base, vectorize_document
    from pipeline.knowledge import store

    from .conftest import wait_for_task

    app = falcon.asgi.App(middleware=[AsEveryone()])
    app.add_route("/api/v1/knowledge/{kb_id}", KnowledgeBaseResource(lambda: kb_engine))
    app.add_route("/api/v1/knowledge/{kb_id}/search", KnowledgeSearchResource())
    api = AppClient(app)
    kb, other = new_base("doomed"), new_base("kept")
    for base in (kb, other):
        for name in ("en-webhooks.md", "zh-sso.md"):
            vectorize_document(knowledge_base_id=str(base.id), source=name, text=(CORPUS / name).read_text(encoding="utf-8"))
    start_kb_worker()

    accepted = api.simulate_delete(f"/api/v1/knowledge/{kb.id}")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json["status_url"].endswith(accepted.json["task_id"])
    again = api.simulate_delete(f"/api/v1/knowledge/{kb.id}")  # a repeated call follows the same task
    assert again.status_code in (202, 404) and (again.status_code == 404 or again.json["task_id"] == accepted.json["task_id"])
    record = wait_for_task(kb_engine, accepted.json["task_id"])
    assert record["state"] == "SUCCESS", record
    assert record["result"]["deleted"] is True and record["result"]["deleted_documents"] == 2
    assert record["result"]["deleted_chunks"] > 2

    with psycopg.connect(knowledge_db) as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE knowledge_base_id = %s", (kb.id,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM script_centroids WHERE knowledge_base_id = %s", (kb.id,)).fetchone()[0] == 0
        assert conn.execute("SELECT 1 FROM pg_class WHERE relname = ANY(%s)", (store.index_names(kb.id),)).fetchone() is None
        assert conn.execute("SELECT count(*) FROM documents WHERE knowledge_base_id = %s", (other.id,)).fetchone()[0] == 2
    assert api.simulate_get(f"/api/v1/knowledge/{kb.id}/search", params={"q": "webhook"}).status_code == 404
    kept = api.simulate_get(f"/api/v1/knowledge/{other.id}/search", params={"q": "webhook signature"})
    assert kept.json["results"][0]["source"] == "en-webhooks.md" and kept.json["results"][0]["document_id"]

    assert api.simulate_delete(f"/api/v1/knowledge/{kb.id}").status_code == 404
    assert api.simulate_delete(f"/api/v1/knowledge/{uuid.uuid4()}").status_code == 404
    bad = api.simulate_delete("/api/v1/knowledge/not-a-uuid")
    assert bad.status_code == 400 and "kb_id" in bad.json["description"]
    # A redelivered task whose base is already gone succeeds without deleting anything.
    assert delete_knowledge_base(knowledge_base_id=str(kb.id))["deleted"] is False
