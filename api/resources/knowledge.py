"""Knowledge bases, search and conversation history over HTTP.

* ``GET /api/v1/knowledge`` — every base with its model and counts; ``POST /api/v1/knowledge`` with
  ``{"name": "..."}`` creates a base for the configured embedder (201; 200 with the existing base
  when the name is taken). Documents are then added with the ``vectorize_document`` task.
* ``DELETE /api/v1/knowledge/{kb_id}`` — delete the base as a whole (index, documents, vectors):
  202 with the ``delete_knowledge_base`` task's id; 404 for an unknown base. Repeating the call
  while the first task's record lives returns the same task.
* ``GET /api/v1/knowledge/{kb_id}/search?q=…&k=5&distinct=true`` — the best passages, one per
  document unless ``distinct=false``; each names its document (``document_id``, ``source``, ``title``).
* ``GET /api/v1/conversations/{conversation_id}/messages?limit=50&before=<message id>`` — a page of
  messages, oldest first; ``next_before`` pages further back (null when there is nothing older).

Mount (the app owns routing and auth; ``roles`` tells the auth middleware the role per method)::

    app.add_route("/api/v1/knowledge", KnowledgeBasesResource())
    app.add_route("/api/v1/knowledge/{kb_id}", KnowledgeBaseResource(engine_provider))
    app.add_route("/api/v1/knowledge/{kb_id}/search", KnowledgeSearchResource())
    app.add_route("/api/v1/conversations/{conversation_id}/messages", ConversationMessagesResource())
"""

from __future__ import annotations

import uuid
from typing import Optional

import falcon
from pydantic import BaseModel, ConfigDict, Field

from api.resources import EngineProvider, status_url
from api.validation import Accepted, Endpoint, validate
from pipeline import client
from pipeline.knowledge import retrieval, store
from pipeline.knowledge.db import connection, database_url
from pipeline.knowledge.embedders import get_embedder

MAX_K = 50
MAX_PAGE = 200


class NewBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: store.StoredText = Field(..., min_length=1, max_length=200)


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: store.StoredText = Field(..., min_length=1, max_length=2000, description="The question or search text.")
    k: int = Field(5, ge=1, le=MAX_K, description="How many hits.")
    distinct: bool = Field(True, description="One hit per document (best chunk) instead of raw chunks.")


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=MAX_PAGE, description="Page size.")
    before: Optional[int] = Field(None, ge=1, description="`next_before` of the previous page.")


class KbPath(BaseModel):
    kb_id: uuid.UUID


class ConversationPath(BaseModel):
    conversation_id: store.StoredText = Field(..., min_length=1, max_length=200)


TAG = "knowledge"


class KnowledgeBasesResource:
    roles = {"GET": "read", "POST": "submit"}
    endpoints = {
        "GET": Endpoint("Every knowledge base with its embedding model and counts", TAG),
        "POST": Endpoint("Create a knowledge base for the configured embedder (200 with the existing one)", TAG,
                         body=NewBase, status=201, also=(200,)),
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with connection() as conn:
            resp.media = {"knowledge_bases": store.list_knowledge_bases(conn)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.endpoints["POST"].parse_body(req)
        embedder = get_embedder()
        with connection() as conn:
            existed = store.find_knowledge_base(conn, body.name)
            kb = existed or store.ensure_knowledge_base(conn, body.name, embedder.model_name, embedder.dim)
        store.ensure_index(database_url(), kb)
        resp.status = falcon.HTTP_200 if existed else falcon.HTTP_201
        resp.media = {"id": str(kb.id), "name": kb.name, "embedder_model": kb.embedder_model,
                      "embedding_dim": kb.embedding_dim, "status": kb.status}


class KnowledgeBaseResource:
    roles = {"DELETE": "submit"}
    endpoints = {"DELETE": Endpoint("Delete a knowledge base as a whole (a delete_knowledge_base task)", TAG,
                                    response=Accepted, status=202, errors=(404,))}

    def __init__(self, engine: EngineProvider):
        self.engine = engine

    def on_delete(self, req: falcon.Request, resp: falcon.Response, kb_id: str) -> None:
        path = validate(KbPath, {"kb_id": kb_id}, status=400, title="Invalid path parameter")
        with connection() as conn:
            try:
                store.get_knowledge_base(conn, path.kb_id)
            except store.UnknownKnowledgeBase as exc:
                raise falcon.HTTPNotFound(title="Unknown knowledge base", description=str(exc)) from None
        engine = self.engine()
        task_id = client.submit("delete_knowledge_base", kwargs={"knowledge_base_id": str(path.kb_id)}, engine=engine,
                                idempotency_key=f"delete-knowledge-base:{path.kb_id}")
        resp.status = falcon.HTTP_202
        resp.media = {"task_id": task_id, "state": client.get_record(task_id, engine=engine)["state"],
                      "status_url": status_url(task_id)}


class KnowledgeSearchResource:
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("Search a knowledge base (hybrid of languages, distinct documents)", TAG,
                                 query=SearchQuery, errors=(404, 409))}

    def on_get(self, req: falcon.Request, resp: falcon.Response, kb_id: str) -> None:
        path = validate(KbPath, {"kb_id": kb_id}, status=400, title="Invalid path parameter")
        query = self.endpoints["GET"].parse_query(req)
        try:
            hits = retrieval.search(path.kb_id, query.q, query.k, distinct=query.distinct)
        except store.UnknownKnowledgeBase as exc:
            raise falcon.HTTPNotFound(title="Unknown knowledge base", description=str(exc)) from None
        except store.EmbedderMismatch as exc:
            raise falcon.HTTPConflict(title="Knowledge base needs a rebuild", description=str(exc)) from None
        resp.media = {
            "knowledge_base_id": str(path.kb_id),
            "query": query.q,
            "results": [hit.as_json() for hit in hits],
        }


class ConversationMessagesResource:
    roles = {"GET": "read"}
    endpoints = {"GET": Endpoint("A page of a conversation's messages, oldest first", TAG,
                                 query=MessagesQuery, errors=(404,))}

    def on_get(self, req: falcon.Request, resp: falcon.Response, conversation_id: str) -> None:
        path = validate(ConversationPath, {"conversation_id": conversation_id}, status=400, title="Invalid path parameter")
        query = self.endpoints["GET"].parse_query(req)
        with connection() as conn:
            # One extra row tells whether an older page exists.
            messages = store.list_messages(conn, path.conversation_id, query.limit + 1, query.before)
        if messages is None:
            raise falcon.HTTPNotFound(
                title="Unknown conversation", description=f"no conversation {path.conversation_id!r}"
            )
        more = len(messages) > query.limit
        page = messages[1:] if more else messages
        resp.media = {
            "conversation_id": path.conversation_id,
            "messages": [message.as_json() for message in page],
            "next_before": page[0].id if more else None,
        }
