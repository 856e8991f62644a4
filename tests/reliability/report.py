"""Write docs/reliability.md from the rows the reliability suite recorded.

    make test-reliability      # runs the full suite, then this
    make test-ha               # runs the high-availability tests, then this (other rows are kept)
    make test-redis-cluster    # the same for the Redis Cluster row
"""

from __future__ import annotations

import json
import sys

from tests.conftest import ROOT
from tests.reliability.conftest import ARTIFACTS

OUTPUT = ROOT / "docs" / "reliability.md"
COLUMNS = ("accepted", "completed", "failed", "lost", "duplicated", "recovery_seconds")
HEADER = """# Reliability report

Produced by the reliability suite against the real RabbitMQ and Redis on this machine; every number
below was measured by a test that fails if a task is lost or finished twice. Reproduce with:

```bash
make test-reliability     # CLAW_RELIABILITY=full pytest tests/reliability, then python -m tests.reliability.report
make test-ha              # only the failover rows: Redis Sentinel, a RabbitMQ cluster node (clusters of their own)
make test-redis-cluster   # the suites on a Redis Cluster, then its row: slots moved mid-load (a cluster of its own)
```

`make test` runs the same tests at a short scale, except the RabbitMQ cluster one (its three nodes take
about 35 s to start: `make test-ha`). *Lost* counts tasks that were accepted (the client got an
id / HTTP 202) but never reached a final state; *duplicated* counts tasks that reached a final state more than
once. *Recovery* is the time from the fault's end (or the kill) until work resumed.

"""


def main() -> int:
    rows = [json.loads(p.read_text()) for p in sorted(ARTIFACTS.glob("*.json"))]
    if not rows:
        print("no reliability results: run the suite first", file=sys.stderr)
        return 1
    # Rows of faults that did not run this time (`make test-ha` runs only its own) are kept as they were.
    table = {fault: line for fault, line in existing_rows()}
    table.update({row["fault"]: format_row(row) for row in rows})
    lines = [HEADER, "| fault | scale | " + " | ".join(COLUMNS) + " | details |", "|" + "---|" * (len(COLUMNS) + 3)]
    lines += table.values()
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote docs/reliability.md ({len(rows)} rows from this run, {len(table) - len(rows)} kept)")
    return 0


def format_row(row: dict) -> str:
    details = {k: v for k, v in row.items() if k not in (*COLUMNS, "fault", "scale", "test", "at")}
    cells = [str(row.get(c, "")) for c in COLUMNS]
    detail_text = "; ".join(f"{k}: {v}" for k, v in details.items())
    return f"| {row['fault']} | {row['scale']} ({row['at']}) | " + " | ".join(cells) + f" | {detail_text} |"


def existing_rows() -> list[tuple[str, str]]:
    """(fault, table line) of every row docs/reliability.md holds now."""
    if not OUTPUT.exists():
        return []
    lines = OUTPUT.read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| fault |")]
    return [(line[2:].split(" | ", 1)[0], line) for line in rows]


if __name__ == "__main__":
    sys.exit(main())
