"""The in-app inbox in Redis and its two HTTP resources."""

from __future__ import annotations

import time

import falcon
import falcon.asgi
import falcon.testing
import pytest

from api.resources.notifications import NotificationListResource, NotificationReadResource
from pipeline.notifications.channels.system import Inbox, InboxSystem
from pipeline.notifications.models import NotificationArgs
from tests.app_client import AppClient


@pytest.fixture
def inbox(redis_ns):
    return Inbox(redis_ns.client, redis_ns.namespace, max_items=50, ttl_seconds=3600)


def fill(inbox: Inbox, user: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        item_id = f"n{i:02d}"
        inbox.add(user, item_id, title=f"title {i}", body=f"body {i}", data={"i": i})
        ids.append(item_id)
        time.sleep(0.002)  # distinct creation times
    return ids


def test_list_is_unread_first_newest_first_with_paging(inbox):
    fill(inbox, "u1", 6)  # n00 (oldest) .. n05 (newest)
    inbox.mark_read("u1", ["n05", "n01"])

    page = inbox.list("u1", offset=0, limit=10)
    assert [i["id"] for i in page["items"]] == ["n04", "n03", "n02", "n00", "n05", "n01"]
    assert [i["read"] for i in page["items"]] == [False] * 4 + [True] * 2
    assert page["items"][4]["read_at"] and page["items"][0]["read_at"] is None
    assert page["unread"] == 4 and page["total"] == 6 and page["next_offset"] is None
    assert page["items"][0] == {**page["items"][0], "title": "title 4", "body": "body 4", "data": {"i": 4}}

    first = inbox.list("u1", offset=0, limit=3)
    second = inbox.list("u1", offset=3, limit=3)
    assert [i["id"] for i in first["items"]] == ["n04", "n03", "n02"] and first["next_offset"] == 3
    assert [i["id"] for i in second["items"]] == ["n00", "n05", "n01"] and second["next_offset"] is None

    unread = inbox.list("u1", unread_only=True)
    assert [i["id"] for i in unread["items"]] == ["n04", "n03", "n02", "n00"] and unread["total"] == 4


def test_mark_read_some_then_all(inbox):
    fill(inbox, "u2", 4)
    assert inbox.mark_read("u2", ["n00", "n00", "missing"]) == {"marked": 1, "unread": 3}
    assert inbox.mark_read("u2", ["n00"]) == {"marked": 0, "unread": 3}  # already read: nothing changes
    assert inbox.mark_read("u2", all=True) == {"marked": 3, "unread": 0}
    assert inbox.unread_count("u2") == 0
    assert all(i["read"] for i in inbox.list("u2")["items"])


def test_add_is_idempotent_per_item_id(inbox):
    _, created = inbox.add("u3", "same", body="hello")
    _, again = inbox.add("u3", "same", body="hello")
    assert (created, again) == (True, False)
    assert inbox.list("u3")["total"] == 1


def test_inboxes_are_per_user_and_under_the_namespace(inbox, redis_ns):
    inbox.add("alice", "a1", body="for alice")
    inbox.add("bob", "b1", body="for bob")
    assert [i["id"] for i in inbox.list("alice")["items"]] == ["a1"]
    keys = list(redis_ns.client.scan_iter(f"{redis_ns.namespace}:*"))
    assert keys and all(k.startswith(f"{redis_ns.namespace}:notify:inbox:") for k in keys)
    assert all(0 < redis_ns.client.ttl(k) <= 3600 for k in keys)


def test_inbox_keeps_at_most_max_items_dropping_oldest_read_first(redis_ns):
    small = Inbox(redis_ns.client, redis_ns.namespace, max_items=3, ttl_seconds=60)
    fill(small, "u4", 3)
    small.mark_read("u4", ["n01"])
    small.add("u4", "n03", body="new")
    assert sorted(i["id"] for i in small.list("u4")["items"]) == ["n00", "n02", "n03"]  # read n01 went first
    small.add("u4", "n04", body="newer")
    assert sorted(i["id"] for i in small.list("u4")["items"]) == ["n02", "n03", "n04"]  # then oldest unread


def test_bad_user_id_is_refused(inbox):
    with pytest.raises(ValueError, match="user_id"):
        inbox.list("bad user/id")


def test_system_channel_adapter_adds_to_the_inbox(redis_ns, make_settings):
    adapter = InboxSystem(make_settings(), redis=redis_ns.client, namespace=redis_ns.namespace)
    note = NotificationArgs(channel="system", recipient="u5", subject="Export done", body="Your export is ready", data={"x": 1})
    receipt = adapter.send(note, "tok1")
    again = adapter.send(note, "tok1")
    assert receipt["created"] is True and again["created"] is False
    page = Inbox(redis_ns.client, redis_ns.namespace).list("u5")
    assert page["total"] == 1 and page["items"][0]["title"] == "Export done" and page["items"][0]["id"] == "tok1"


# --- HTTP resources -------------------------------------------------------------------------------
class AsEveryone:
    """What the API's auth middleware does for a token with every scope (the resources read the caller)."""

    async def process_request(self, req, resp):
        from api.caller import OPEN

        req.context.caller = OPEN


@pytest.fixture
def client(inbox):
    app = falcon.asgi.App(middleware=[AsEveryone()])
    app.add_route("/api/v1/notifications/{user_id}", NotificationListResource(inbox))
    app.add_route("/api/v1/notifications/{user_id}/read", NotificationReadResource(inbox))
    return AppClient(app)


def test_resources_declare_their_scope_and_open_to_user_tokens_for_their_own_inbox():
    from api.auth import Access

    expected = {"GET": Access("notifications:inbox", users=True), "POST": Access("notifications:inbox", users=True)}
    assert NotificationListResource.access == expected == NotificationReadResource.access


def test_http_get_lists_unread_first_and_pages(client, inbox):
    fill(inbox, "web", 5)
    inbox.mark_read("web", ["n04"])
    resp = client.simulate_get("/api/v1/notifications/web", params={"limit": "2"})
    assert resp.status_code == 200
    assert [i["id"] for i in resp.json["items"]] == ["n03", "n02"]
    assert resp.json["unread"] == 4 and resp.json["total"] == 5 and resp.json["next_offset"] == 2
    last = client.simulate_get("/api/v1/notifications/web", params={"offset": "4", "limit": "2"})
    assert [i["id"] for i in last.json["items"]] == ["n04"] and last.json["next_offset"] is None
    only = client.simulate_get("/api/v1/notifications/web", params={"unread_only": "true"})
    assert only.json["total"] == 4


def test_http_post_marks_ids_or_all(client, inbox):
    fill(inbox, "web2", 3)
    resp = client.simulate_post("/api/v1/notifications/web2/read", json={"ids": ["n00"]})
    assert resp.status_code == 200 and resp.json == {"user_id": "web2", "marked": 1, "unread": 2}
    resp = client.simulate_post("/api/v1/notifications/web2/read", json={"all": True})
    assert resp.json == {"user_id": "web2", "marked": 2, "unread": 0}


@pytest.mark.parametrize(
    "params, field",
    [({"limit": "0"}, "limit"), ({"limit": "500"}, "limit"), ({"offset": "-1"}, "offset"), ({"limit": "ten"}, "limit"),
     ({"unread_only": "maybe"}, "unread_only")],
)
def test_http_get_bad_query_names_the_field(client, params, field):
    resp = client.simulate_get("/api/v1/notifications/web", params=params)
    assert resp.status_code == 400
    assert resp.json["title"] == "Invalid query parameter" and resp.json["description"].startswith(f"{field}:")


@pytest.mark.parametrize(
    "body, field",
    [({}, "ids"), ({"ids": []}, "ids"), ({"ids": "n1"}, "ids"), ({"all": False}, "all"), ({"ids": ["a"], "all": True}, "ids"),
     ({"ids": ["a"], "extra": 1}, "extra"), (["n1"], "body")],
)
def test_http_post_bad_body_names_the_field(client, body, field):
    resp = client.simulate_post("/api/v1/notifications/web/read", json=body)
    assert resp.status_code == 422, resp.text  # JSON, but not a valid body
    assert field in resp.json["description"]


def test_http_post_malformed_json_and_bad_user_id(client):
    resp = client.simulate_post(
        "/api/v1/notifications/web/read", body="{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400 and "not valid JSON" in resp.json["description"]
    resp = client.simulate_get("/api/v1/notifications/bad%20user")
    assert resp.status_code == 400 and resp.json["description"].startswith("user_id:")
