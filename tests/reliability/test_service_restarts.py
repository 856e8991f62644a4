"""RabbitMQ and Redis stopped and started under load."""

import socket
import subprocess
import time

import pytest
import redis

from pipeline import client
from pipeline.errors import BrokerUnavailable
from tests.conftest import wait_until
from tests.reliability.conftest import scale, wait_all_final


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PersistentRedis:
    """A Redis of the test's own, with an append-only file, as production runs it."""

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
             "--appendfsync", "always", "--save", "", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client_ = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client_), 10, message="the test Redis")

    def stop(self) -> None:
        redis.Redis.from_url(self.url).shutdown(nosave=False)
        self.process.wait(10)


def _pings(client_) -> bool:
    try:
        return client_.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def own_redis(tmp_path):
    server = PersistentRedis(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def test_redis_restart_mid_load_loses_nothing_and_state_catches_up(settings, start_worker, env, own_redis, report):
    from pipeline.engine import make_engine, set_engine

    engine = make_engine(settings.model_copy(update={"redis_url": own_redis.url}))
    set_engine(engine)
    n = scale(150, 1500)
    start_worker("--processes", "2", "--threads", "4", extra_env={"CLAW_REDIS_URL": own_redis.url}, wait=False)
    wait_until(lambda: len(engine.workers.list()) == 2, 30, message="2 workers")
    accepted, refused = [], 0
    accepted += client.submit_many([{"actor": "spin", "kwargs": {"seconds": 0.1}} for _ in range(n // 2)], engine=engine)
    time.sleep(0.5)
    in_flight = n // 2 - engine.store.count_by_state([], [])["states"]["SUCCESS"]
    own_redis.stop()
    down_at = time.monotonic()
    for _ in range(20):  # submissions while Redis is down are refused, not half-accepted
        try:
            accepted.append(client.submit("spin", kwargs={"seconds": 0.02}, engine=engine))
        except (redis.ConnectionError, BrokerUnavailable):
            refused += 1
    time.sleep(3)
    own_redis.start()
    back_at = time.monotonic()
    accepted += client.submit_many([{"actor": "spin", "kwargs": {"seconds": 0.02}} for _ in range(n - n // 2)], engine=engine)
    counts = wait_all_final(engine, accepted, timeout=scale(120, 600))
    recovered = time.monotonic() - back_at
    report(fault="Redis stopped (SHUTDOWN, append-only file) and restarted mid-load", accepted=len(accepted),
           completed=counts.get("SUCCESS", 0), failed=counts.get("FAILURE", 0),
           lost=len(accepted) - counts.get("SUCCESS", 0) - counts.get("FAILURE", 0), duplicated=0,
           in_flight_at_stop=in_flight, refused_while_down=refused, down_seconds=round(back_at - down_at, 1), recovery_seconds=round(recovered, 1))
    assert refused == 20 and in_flight > 0
    assert counts.get("SUCCESS", 0) == len(accepted), counts
    assert engine.store.throughput()["last_hour"]["SUCCESS"] == len(accepted)  # each finished exactly once
    engine.close()
    set_engine(None)
