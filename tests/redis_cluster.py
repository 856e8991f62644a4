"""``make test-redis-cluster``: run pytest against a 3-master Redis Cluster of its own.

    python -m tests.redis_cluster [pytest arguments...]

starts three ``redis-server --cluster-enabled yes`` on free loopback ports
(data under /tmp), joins them with ``redis-cli --cluster create`` (16384
slots over 3 masters, no replicas), runs pytest with ``CLAW_TEST_REDIS_URL``
set to the cluster's ``redis+cluster://`` URL (so every test, fixture and
worker process it starts uses the cluster, and the state store its 16
shards), then stops the servers and removes their data. The shared Redis is
not touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.ha.servers import RedisClusterGroup


def main(arguments: list[str]) -> int:
    directory = Path(tempfile.mkdtemp(prefix="claw-redis-cluster-", dir="/tmp"))
    cluster = RedisClusterGroup(directory)
    try:
        cluster.start()
        print(f"Redis Cluster: {cluster.url}", flush=True)
        return subprocess.call([sys.executable, "-m", "pytest", *arguments],
                               env={**os.environ, "CLAW_TEST_REDIS_URL": cluster.url})
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
