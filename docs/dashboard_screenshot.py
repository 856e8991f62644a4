"""Regenerate docs/dashboard-overview.png: the dashboard's overview in real Chromium.

The browser test that loads every page against gunicorn and a real worker
takes the screenshot (into test-artifacts/); this copies it here, so the
picture in the docs is always one the test suite has checked.

    .venv/bin/python docs/dashboard_screenshot.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/dashboard/test_browser.py::test_every_page_loads_and_the_overview_refreshes_itself"
SHOT = ROOT / "test-artifacts" / "dashboard-overview.png"


def main() -> int:
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT)
    if code != 0:
        return code
    target = ROOT / "docs" / "dashboard-overview.png"
    shutil.copyfile(SHOT, target)
    print(f"wrote {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
