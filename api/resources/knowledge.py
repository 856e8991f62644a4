"""Knowledge bases, search and conversation history over HTTP.

* ``GET /api/v1/knowledge`` — every base with its model and counts; ``POST /api/v1/knowledge`` with
  ``{"name": "..."}`` creates a base for the configured embedder (201; 200 with the existing base
  when the name is taken). Documents are then added with the ``vectorize_document`` task.
* ``DELETE /api/v1/knowledge/{kb_id}`` — delete the base as a whole (index, documents, vectors):
  202 with the ``delete_knowledge_base`` task's id; 404 for an unknown base. Repeating the call
  while the first task's record lives returns the same task.
* ``GET /api/v1/knowledge/{kb_id}/search?q=…&k=5&distinct=true`` — the best passages, one per
  document unless ``distinct=false``; each names its document (``document_id``, ``source``, ``title``).
* ``GET /api/v1/conversations/{conversation_id}/messages?limit=50&cursor=<next_cursor>`` — a page of
  messages, oldest first; ``next_cursor`` pages further back (null when there is nothing older).
  ``before``/``next_before`` are the same under their earlier names.

The knowledge stack (PostgreSQL driver, embedder, numpy) is the ``[knowledge]`` extra: it is
imported on the first call, so an API installed without it serves every other route and answers
these with a 503 that names what to install.

Owners: a base belongs to a tenant (``tenant_id``, given when it is created); a user token lists
and searches the bases of its own tenant only (a user without a tenant: the bases without one).
A conversation belongs to the user who started it; a user token reads only its own, and nobody
posts into another user's (:func:`check_ai_submission`, and the task itself). Anything of
another's answers 404, as if it did not exist.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import falcon

from api.auth import Access, caller_of
from api.blocking import run_blocking
from api.caller import Caller
from api.errors import ApiError
from api.models import (
    Accepted,
    ConversationPath,
    KbPath,
    KnowledgeBase,
    KnowledgeBaseList,
    MessagePage,
    MessagesQuery,
    NewBase,
    SearchQuery,
    SearchResults,
)
from api.resources import EngineResource, status_url
from api.validation import Endpoint, validate
from pipeline import client
from pipeline.knowledge import extra
from pipeline.owners import Owner

TAG = "knowledge"


def _knowledge_stack():
    """The knowledge modules, imported on first use (an optional extra; see the module's docstring)."""
    try:
        return extra.modules("db", "embedders", "retrieval", "store")
    except extra.KnowledgeStackMissing as exc:
        raise ApiError(503, "Knowledge stack not installed", str(exc)) from None


def _unknown_base(kb_id: Any) -> ApiError:
    return ApiError(404, "Unknown knowledge base", f"knowledge base {kb_id} does not exist",
                    fields={"kb_id": "no such knowledge base"})


def _readable_base(caller: Caller, kb_id: Any) -> None:
    """404 unless a user token's tenant may read the base (a service token may read any)."""
    db, _, _, store = _knowledge_stack()
    with db.connection() as conn:
        try:
            kb = store.get_knowledge_base(conn, kb_id)
        except store.UnknownKnowledgeBase:
            raise _unknown_base(kb_id) from None
    if caller.is_user and not kb.readable_by(caller.tenant_id):
        raise _unknown_base(kb_id)


class KnowledgeBasesResource:
    access = {"GET": Access("knowledge:read", users=True), "POST": Access("knowledge:write", users=False, audit=True)}
    endpoints = {
        "GET": Endpoint("Every knowledge base with its embedding model and counts", TAG,
                        operation_id="listKnowledgeBases", response=KnowledgeBaseList, errors=(503,),
                        description="A user token lists the bases of its own tenant."),
        "POST": Endpoint("Create a knowledge base for the configured embedder (200 with the existing one)", TAG,
                         operation_id="createKnowledgeBase", body=NewBase, response=KnowledgeBase, status=201,
                         also=(200,), errors=(409, 503)),
    }

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        caller = caller_of(req)
        resp.media = await run_blocking(self._list, caller.tenant_id if caller.is_user else _ANY)

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await self.endpoints["POST"].parse_body(req)
        existed, kb = await run_blocking(self._create, body.name, body.tenant_id)
        resp.status = falcon.HTTP_200 if existed else falcon.HTTP_201
        resp.media = {"id": str(kb.id), "name": kb.name, "embedder_model": kb.embedder_model,
                      "embedding_dim": kb.embedding_dim, "status": kb.status, "tenant_id": kb.tenant_id}

    @staticmethod
    def _list(tenant: Any) -> dict[str, Any]:
        db, _, _, store = _knowledge_stack()
        with db.connection() as conn:
            return {"knowledge_bases": store.list_knowledge_bases(conn, store.ANY_TENANT if tenant is _ANY else tenant)}

    @staticmethod
    def _create(name: str, tenant_id: Optional[str]):
        db, embedders, _, store = _knowledge_stack()
        embedder = embedders.get_embedder()
        with db.connection() as conn:
            existed = store.find_knowledge_base(conn, name)
            if existed is not None and existed.tenant_id != tenant_id:
                raise ApiError(409, "Name taken", f"name: another tenant's base is called {name!r}",
                               fields={"name": "taken by another tenant's base"})
            kb = existed or store.ensure_knowledge_base(conn, name, embedder.model_name, embedder.dim, tenant_id)
        store.ensure_index(db.database_url(), kb)
        return existed, kb


#: The list of every tenant's bases (a service token's view).
_ANY = object()


class KnowledgeBaseResource(EngineResource):
    access = {"DELETE": Access("knowledge:write", users=False, audit=True)}
    endpoints = {"DELETE": Endpoint("Delete a knowledge base as a whole (a delete_knowledge_base task)", TAG,
                                    operation_id="deleteKnowledgeBase",
                                    response=Accepted, status=202, errors=(404, 503))}

    async def on_delete(self, req: falcon.Request, resp: falcon.Response, kb_id: str) -> None:
        path = validate(KbPath, {"kb_id": kb_id}, status=400, title="Invalid path parameter")
        task_id, state = await run_blocking(self._delete, path)
        resp.status = falcon.HTTP_202
        resp.media = {"task_id": task_id, "state": state, "status_url": status_url(task_id)}

    def _delete(self, path: KbPath) -> tuple[str, str]:
        db, _, _, store = _knowledge_stack()
        with db.connection() as conn:
            try:
                store.get_knowledge_base(conn, path.kb_id)
            except store.UnknownKnowledgeBase as exc:
                raise ApiError(404, "Unknown knowledge base", str(exc), fields={"kb_id": "no such knowledge base"}) from None
        engine = self.engine()
        task_id = client.submit("delete_knowledge_base", kwargs={"knowledge_base_id": str(path.kb_id)}, engine=engine,
                                idempotency_key=f"delete-knowledge-base:{path.kb_id}")
        return task_id, client.get_record(task_id, engine=engine)["state"]


class KnowledgeSearchResource:
    access = {"GET": Access("knowledge:read", users=True)}
    endpoints = {"GET": Endpoint("Search a knowledge base (hybrid of languages, distinct documents)", TAG,
                                 operation_id="searchKnowledgeBase", query=SearchQuery, response=SearchResults, errors=(404, 409, 503),
                                 description="A user token searches the bases of its own tenant only.")}

    async def on_get(self, req: falcon.Request, resp: falcon.Response, kb_id: str) -> None:
        path = validate(KbPath, {"kb_id": kb_id}, status=400, title="Invalid path parameter")
        query = self.endpoints["GET"].parse_query(req)
        caller = caller_of(req)
        if caller.is_user:
            await run_blocking(_readable_base, caller, path.kb_id)
        hits = await run_blocking(self._search, path, query)
        resp.media = {
            "knowledge_base_id": str(path.kb_id),
            "query": query.q,
            "results": [hit.as_json() for hit in hits],
        }

    @staticmethod
    def _search(path: KbPath, query: SearchQuery) -> list:
        _, _, retrieval, store = _knowledge_stack()
        try:
            return retrieval.search(path.kb_id, query.q, query.k, distinct=query.distinct)
        except store.UnknownKnowledgeBase as exc:
            raise ApiError(404, "Unknown knowledge base", str(exc), fields={"kb_id": "no such knowledge base"}) from None
        except store.EmbedderMismatch as exc:
            raise ApiError(409, "Knowledge base needs a rebuild", str(exc)) from None


class ConversationMessagesResource:
    access = {"GET": Access("conversations:read", users=True)}
    endpoints = {"GET": Endpoint("A page of a conversation's messages, oldest first", TAG,
                                 operation_id="listConversationMessages", query=MessagesQuery, response=MessagePage, errors=(404, 503),
                                 description="A user token reads the conversations its own user started only.")}

    async def on_get(self, req: falcon.Request, resp: falcon.Response, conversation_id: str) -> None:
        path = validate(ConversationPath, {"conversation_id": conversation_id}, status=400, title="Invalid path parameter")
        query = self.endpoints["GET"].parse_query(req)
        resp.media = await run_blocking(self._page, path.conversation_id, query, caller_of(req))

    @staticmethod
    def _page(conversation_id: str, query: MessagesQuery, caller: Caller) -> dict[str, Any]:
        db, _, _, store = _knowledge_stack()
        with db.connection() as conn:
            # One extra row tells whether an older page exists.
            messages = store.list_messages(conn, conversation_id, query.limit + 1, query.before_id,
                                           caller.user_id if caller.is_user else store.ANY_USER)
        if messages is None:
            raise ApiError(404, "Unknown conversation", f"no conversation {conversation_id!r}",
                           fields={"conversation_id": "no such conversation"})
        more = len(messages) > query.limit
        page = messages[1:] if more else messages
        return {
            "conversation_id": conversation_id,
            "messages": [message.as_json() for message in page],
            "next_cursor": str(page[0].id) if more else None,
            "next_before": page[0].id if more else None,
        }


class ConversationOwners:
    """Who owns each conversation the API has looked up: an owner never changes, so it is asked once."""

    SIZE = 100_000

    def __init__(self) -> None:
        self._owners: dict[str, tuple[Optional[str], Optional[str]]] = {}
        self._lock = threading.Lock()

    def get(self, conn, store, conversation_id: str) -> Optional[tuple[Optional[str], Optional[str]]]:
        owner = self._owners.get(conversation_id)
        if owner is None:
            owner = store.conversation_owner(conn, conversation_id)
            if owner is not None:
                with self._lock:
                    if len(self._owners) >= self.SIZE:
                        self._owners.clear()
                    self._owners[conversation_id] = tuple(owner)
        return owner


_owners = ConversationOwners()


def check_ai_submission(caller: Caller, kwargs: dict, owner: Owner) -> None:
    """Refuse (404, as if it did not exist) a generate_ai_response into a conversation another user
    started, or over a base the user's tenant may not read. Without the knowledge stack there is
    nothing to check here (the task cannot run either)."""
    try:
        db, store = extra.modules("db", "store")
    except extra.KnowledgeStackMissing:
        return
    conversation_id, kb_id = kwargs["conversation_id"], kwargs.get("knowledge_base_id")
    with db.connection() as conn:
        found = _owners.get(conn, store, conversation_id)
        if found is not None and found[0] != owner.user_id:
            raise ApiError(404, "Unknown conversation",
                           f"conversation_id: {conversation_id!r} is not a conversation of this user "
                           "(another user started it; start yours with a new id)",
                           fields={"conversation_id": "not a conversation of this user"})
        if kb_id is not None and owner.user_id is not None:
            try:
                kb = store.get_knowledge_base(conn, kb_id)
            except store.UnknownKnowledgeBase:
                raise _unknown_base(kb_id) from None
            if not kb.readable_by(owner.tenant_id):
                raise _unknown_base(kb_id)
