"""ScriptBatcher against the real Redis: shared round trips, replies kept apart, broken connections."""

import threading

import pytest
import redis

from pipeline.redis_url import is_cluster_url
from pipeline.state.batching import ScriptBatcher
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(is_cluster_url(REDIS_URL), reason="the batcher shares one server's connection; on a "
                                "Redis Cluster each script goes to its slot's node (StateStore uses no batcher there)")


def counting_batcher(redis_client) -> tuple[ScriptBatcher, list[int]]:
    """A batcher whose connection counts its writes (one per round trip)."""
    writes: list[int] = []

    def make_connection():
        connection = redis_client.connection_pool.make_connection()
        send = connection.send_packed_command

        def counted(command, *args, **kwargs):
            writes.append(1)
            return send(command, *args, **kwargs)

        connection.send_packed_command = counted
        return connection

    return ScriptBatcher(make_connection), writes


def run_threads(count: int, body) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            body(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_threads_share_round_trips_and_each_gets_its_own_replies(redis_client, namespace):
    batcher, writes = counting_batcher(redis_client)

    def increment(index: int) -> None:
        for expected in range(1, 201):
            assert batcher.execute("INCR", f"{namespace}:n:{index}") == expected

    assert run_threads(8, increment) == []
    assert [int(redis_client.get(f"{namespace}:n:{i}")) for i in range(8)] == [200] * 8
    assert len(writes) < 8 * 200  # some round trips carried several threads' commands


def test_an_error_reply_fails_only_its_own_call(redis_client, namespace):
    batcher, _ = counting_batcher(redis_client)

    def mixed(index: int) -> None:
        for _ in range(100):
            if index == 0:
                with pytest.raises(redis.exceptions.NoScriptError):
                    batcher.execute("EVALSHA", "0" * 40, 0)
            else:
                batcher.execute("INCR", f"{namespace}:ok")

    assert run_threads(6, mixed) == []
    assert int(redis_client.get(f"{namespace}:ok")) == 500


def test_a_broken_connection_fails_its_round_trip_and_the_next_call_reconnects(redis_client, namespace):
    batcher, _ = counting_batcher(redis_client)
    client_id = batcher.execute("CLIENT", "ID")
    redis_client.client_kill_filter(_id=client_id)
    with pytest.raises(redis.ConnectionError):
        batcher.execute("INCR", f"{namespace}:after")
    assert batcher.execute("INCR", f"{namespace}:after") >= 1
    assert batcher.execute("CLIENT", "ID") != client_id
