"""Write docs/reliability.md from the rows the reliability suite recorded.

    make test-reliability      # runs the full suite, then this
"""

from __future__ import annotations

import json
import sys

from tests.conftest import ROOT
from tests.reliability.conftest import ARTIFACTS

COLUMNS = ("accepted", "completed", "failed", "lost", "duplicated", "recovery_seconds")
HEADER = """# Reliability report

Produced by the reliability suite against the real RabbitMQ and Redis on this machine; every number
below was measured by a test that fails if a task is lost or finished twice. Reproduce with:

```bash
make test-reliability     # CLAW_RELIABILITY=full pytest tests/reliability, then python -m tests.reliability.report
```

`make test` runs the same tests at a short scale. *Lost* counts tasks that were accepted (the client got an
id / HTTP 202) but never reached a final state; *duplicated* counts tasks that reached a final state more than
once. *Recovery* is the time from the fault's end (or the kill) until work resumed.

"""


def main() -> int:
    rows = [json.loads(p.read_text()) for p in sorted(ARTIFACTS.glob("*.json"))]
    if not rows:
        print("no reliability results: run the suite first", file=sys.stderr)
        return 1
    lines = [HEADER, "| fault | scale | " + " | ".join(COLUMNS) + " | details |", "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        details = {k: v for k, v in row.items() if k not in (*COLUMNS, "fault", "scale", "test", "at")}
        cells = [str(row.get(c, "")) for c in COLUMNS]
        detail_text = "; ".join(f"{k}: {v}" for k, v in details.items())
        lines.append(f"| {row['fault']} | {row['scale']} ({row['at']}) | " + " | ".join(cells) + f" | {detail_text} |")
    (ROOT / "docs" / "reliability.md").write_text("\n".join(lines) + "\n")
    print(f"wrote docs/reliability.md ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
