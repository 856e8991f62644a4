"""Schema migrations and the embedded PostgreSQL, with several processes at once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import sql

from .conftest import ROOT


@pytest.fixture
def blank_database(knowledge_db):
    """An empty database next to the session's (dropped afterwards)."""
    name = f"claw_kb_blank_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(knowledge_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(knowledge_db, dbname=name)
    yield url
    with psycopg.connect(knowledge_db, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _in_processes(code: str, count: int, env: dict) -> list[str]:
    """Run ``code`` in ``count`` Python processes started together; return their outputs."""
    processes = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_upgrade_from_several_processes_at_once_applies_each_migration_once(blank_database):
    from pipeline.knowledge.migrations import available, upgrade

    outputs = _in_processes(
        "from pipeline.knowledge.migrations import upgrade; print(len(upgrade()))", 4,
        {"CLAW_DATABASE_URL": blank_database},
    )
    assert sorted(outputs) == ["0", "0", "0", str(len(available()))]
    assert upgrade(blank_database) == []
    with psycopg.connect(blank_database) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert versions == [m.version for m in available()]
    assert extension[0] >= "0.8"


def test_an_edited_migration_is_reported_not_silently_skipped(blank_database):
    from pipeline.errors import ConfigError
    from pipeline.knowledge.migrations import upgrade

    upgrade(blank_database)
    with psycopg.connect(blank_database) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(ConfigError, match="0001_knowledge_bases was changed after it was applied"):
        upgrade(blank_database)


def test_embedded_server_is_shared_by_processes_asking_at_once(knowledge_db):
    """Without CLAW_DATABASE_URL every process joins the one embedded server under var/pgdata."""
    if os.environ.get("CLAW_TEST_DATABASE_URL"):
        pytest.skip("the tests run against an external server")
    code = (
        "import psycopg; from pipeline.knowledge import db; url = db.database_url();"
        "print(url, psycopg.connect(url).execute('SELECT pg_postmaster_start_time()').fetchone()[0])"
    )
    outputs = _in_processes(code, 3, {"CLAW_DATABASE_URL": ""})
    assert len(set(outputs)) == 1  # same socket, same server start time
    assert str(ROOT / "var" / "pgdata") in outputs[0]
