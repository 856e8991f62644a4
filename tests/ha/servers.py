"""Clustered services of a test's own: Redis master + replicas + Sentinels, a Redis Cluster, and a RabbitMQ cluster.

Every process here is started by the test on free loopback ports, with its
data under the test's temporary directory, and stopped by PID when the test
ends: the shared RabbitMQ (5672) and Redis (6379) are never touched. The
RabbitMQ nodes get their own Erlang cookie (a HOME of their own), so they
cannot even talk to the shared node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import redis

from tests.conftest import ROOT, free_port, wait_until

SERVICE = "claw-ha"
HA_DEFINITIONS = ROOT / "infra" / "rabbitmq" / "definitions.ha.json"


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class RedisProcess:
    """One redis-server (or Sentinel) process on a free port."""

    def __init__(self, directory: Path, name: str, port: Optional[int] = None):
        self.directory = directory / name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = port or free_port()
        self.process: Optional[subprocess.Popen] = None
        self.log = self.directory / "server.log"

    def start(self, *arguments: str) -> "RedisProcess":
        self.process = subprocess.Popen(
            ["redis-server", *arguments, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _answers(self.client()), 10, message=f"{self.name} to answer")
        return self

    def client(self, **options) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=2,
                           socket_connect_timeout=1, **options)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save, connections reset."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class SentinelGroup:
    """A master, its replicas and three Sentinels watching them (quorum 2), as docker-compose.ha.yml runs them."""

    def __init__(self, directory: Path, replicas: int = 1, down_after_ms: int = 1000, failover_timeout_ms: int = 3000):
        self.directory = directory
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.servers = [RedisProcess(directory, "redis-0")] + [RedisProcess(directory, f"redis-{i + 1}") for i in range(replicas)]
        self.sentinels = [RedisProcess(directory, f"sentinel-{i}") for i in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> "SentinelGroup":
        master = self.servers[0]
        master.start("--save", "", "--appendonly", "no")
        for replica in self.servers[1:]:
            replica.start("--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", str(master.port))
        for sentinel in self.sentinels:
            config = sentinel.directory / "sentinel.conf"
            config.write_text("\n".join([
                "sentinel resolve-hostnames no",
                f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2",
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
                f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {SERVICE} 1",
            ]) + "\n")
            sentinel.start(str(config), "--sentinel")
        wait_until(self._settled, 30, interval=0.2, message="Sentinels to know each other and the replicas")
        return self

    def _settled(self) -> bool:
        replicas = len(self.servers) - 1
        for sentinel in self.sentinels:
            try:
                state = sentinel.client().sentinel_master(SERVICE)
            except redis.RedisError:
                return False
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < replicas or state["flags"] != "master":
                return False
        return all(self.in_sync(server) for server in self.replicas())

    def master_port(self) -> Optional[int]:
        """The master's port as the Sentinels (a majority) see it now."""
        ports = []
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().sentinel_get_master_addr_by_name(SERVICE)
            except redis.RedisError:
                continue
            if address:
                ports.append(int(address[1]))
        best = max(set(ports), key=ports.count, default=None)
        return best if best is not None and ports.count(best) >= 2 else None

    def master(self) -> RedisProcess:
        port = self.master_port()
        return next(server for server in self.servers if server.port == port)

    def replicas(self) -> list[RedisProcess]:
        port = self.master_port()
        return [server for server in self.servers if server.port != port and server.process.poll() is None]

    def in_sync(self, replica: RedisProcess) -> bool:
        try:
            info = replica.client().info("replication")
        except redis.RedisError:
            return False
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()


def cluster_port() -> int:
    """A free port for a cluster node: at most 55535, with its cluster bus port (+10000) free too."""
    while True:
        port = free_port()
        if port <= 55535:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class RedisClusterGroup:
    """A Redis Cluster of *masters* masters (no replicas), made by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, masters: int = 3):
        self.directory = directory
        self.servers = [RedisProcess(directory, f"cluster-{i}", cluster_port()) for i in range(masters)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def start(self) -> "RedisClusterGroup":
        for server in self.servers:
            server.start("--cluster-enabled", "yes", "--cluster-config-file", str(server.directory / "nodes.conf"),
                         "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no")
        self.cli("--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
                 "--cluster-replicas", "0", "--cluster-yes")
        wait_until(self._settled, 30, interval=0.2, message="the cluster to cover every slot on every node")
        return self

    def _settled(self) -> bool:
        try:
            return all(server.client().cluster("info").get("cluster_state") == "ok" for server in self.servers)
        except redis.RedisError:
            return False

    def cli(self, *arguments: str, timeout: float = 300) -> str:
        """Run redis-cli (against the first node unless *arguments* say otherwise); its output."""
        done = subprocess.run(["redis-cli", *arguments], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(arguments)}: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return done.stdout

    def node_ids(self) -> list[str]:
        return [server.client().execute_command("CLUSTER", "MYID") for server in self.servers]

    def owner_of(self, slot: int) -> int:
        """The index of the node serving *slot* now."""
        for start, end, master, *_ in self.servers[0].client().execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return next(i for i, server in enumerate(self.servers) if server.port == int(master[1]))
        raise LookupError(f"no node serves slot {slot}")

    def move_slot(self, slot: int, target: int, batch: int = 10) -> int:
        """Move *slot* with its keys to node *target* while clients keep working, the way
        ``redis-cli --cluster reshard`` moves each slot: IMPORTING/MIGRATING, MIGRATE of the keys
        *batch* at a time (clients are redirected with ASK meanwhile), then SETSLOT NODE everywhere.
        Returns how many keys moved."""
        source = self.owner_of(slot)
        if source == target:
            return 0
        ids = self.node_ids()
        origin, destination = self.servers[source].client(), self.servers[target].client()
        destination.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        origin.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        moved = 0
        while keys := origin.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            origin.execute_command("MIGRATE", "127.0.0.1", self.servers[target].port, "", 0, 10_000, "KEYS", *keys)
            moved += len(keys)
        for server in (self.servers[target], self.servers[source],
                       *(s for i, s in enumerate(self.servers) if i not in (source, target))):
            server.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
        return moved

    def reshard(self, source: int, target: int, slots: int) -> str:
        """Move *slots* slots (with their keys) from node *source* to node *target* while clients keep working."""
        ids = self.node_ids()
        return self.cli("--cluster", "reshard", f"127.0.0.1:{self.servers[0].port}", "--cluster-from", ids[source],
                        "--cluster-to", ids[target], "--cluster-slots", str(slots), "--cluster-yes",
                        "--cluster-pipeline", "100")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


class RabbitNode:
    """One RabbitMQ node of a cluster, run from the Debian package's scripts with its own directories."""

    def __init__(self, cluster: "RabbitCluster", index: int):
        self.cluster = cluster
        self.name = f"claw-ha-{cluster.tag}-{index}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.directory = cluster.directory / f"node-{index}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: Optional[subprocess.Popen] = None

    def url_for(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.cluster.home),  # its .erlang.cookie: the cluster's own
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(self.cluster.empty_env_file),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> None:
        (self.directory / "rabbitmq.conf").write_text("loopback_users = none\nlog.console = false\n")
        (self.directory / "enabled_plugins").write_text("[].\n")
        self.process = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env(),
                                        stdout=open(self.directory / "server.out", "w"), stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def ctl(self, *arguments: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.name, "-q", *arguments], env=self.env(),
                              capture_output=True, text=True, timeout=timeout, check=check)

    def await_startup(self, timeout: float = 120) -> None:
        def started() -> bool:
            assert self.process.poll() is None, (self.directory / "server.out").read_text()[-2000:]
            return self.ctl("await_startup", "--timeout", "30", check=False).returncode == 0

        wait_until(started, timeout, interval=0.5, message=f"RabbitMQ node {self.name}")

    def stop(self) -> None:
        """Stop the node (the whole Erlang VM), gracefully."""
        if self.process is None or self.process.poll() is not None:
            return
        self.ctl("stop", check=False)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


class RabbitCluster:
    """Three RabbitMQ nodes joined into one cluster, on free ports, with infra's HA definitions
    (the ``claw`` vhost and the mirroring policies) imported, as docker-compose.ha.yml runs them."""

    def __init__(self, directory: Path, size: int = 3, definitions: Path = HA_DEFINITIONS, vhost: str = "claw"):
        self.directory = directory
        self.definitions = definitions
        self.vhost = vhost
        self.tag = f"{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.home = directory / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(f"CLAWHA{os.urandom(12).hex().upper()}")
        cookie.chmod(0o400)
        self.empty_env_file = directory / "rabbitmq-env.conf"
        self.empty_env_file.write_text("")
        self.nodes = [RabbitNode(self, i) for i in range(size)]

    @property
    def urls(self) -> str:
        """The broker URL naming every node (CLAW_BROKER_URL form)."""
        return ";".join(node.url_for(self.vhost) for node in self.nodes)

    def running(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.process is not None and node.process.poll() is None]

    def master_of(self, queue: str) -> RabbitNode:
        """The node holding *queue*'s master (``list_queues --local`` on each running node)."""
        for node in self.running():
            local = node.ctl("list_queues", "-p", self.vhost, "--local", "name", "--formatter", "json").stdout
            if any(entry["name"] == queue for entry in json.loads(local)):
                return node
        raise LookupError(f"no running node holds {queue}")

    def queues(self) -> dict[str, dict]:
        """Every queue of the vhost as a running node sees it: policy, arguments, master and mirrors."""
        node = self.running()[0]
        columns = ("name", "policy", "arguments", "pid", "slave_pids", "synchronised_slave_pids", "messages", "consumers")
        listed = node.ctl("list_queues", "-p", self.vhost, *columns, "--formatter", "json").stdout
        return {queue["name"]: queue for queue in json.loads(listed)}

    def start(self) -> "RabbitCluster":
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.await_startup()
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", seed.name)
            node.ctl("start_app")
        running = lambda: seed.ctl("eval", "length(rabbit_nodes:all_running()).", check=False).stdout.strip()  # noqa: E731
        wait_until(lambda: running() == str(len(self.nodes)), 60, interval=0.5, message="every node running in the cluster")
        seed.ctl("import_definitions", str(self.definitions))
        seed.ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
