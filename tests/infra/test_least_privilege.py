"""The users compose gives the application are real least-privilege users, made by the files compose runs.

* RabbitMQ: ``infra/rabbitmq/app_user.py`` (compose's rabbitmq-setup service) against this machine's
  RabbitMQ management API, in a vhost of the test's own: the user works in its vhost, nowhere else, and
  cannot administer anything.
* PostgreSQL: ``infra/postgres/initdb-app-user.sh`` (the postgres image's initdb hook) on a database of the
  test's own: the role runs every migration and builds a base's indexes, and can do nothing a superuser can.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import quote, urlsplit

import pika
import psycopg
import pytest
import requests
from psycopg import sql

from tests.conftest import ROOT
from tests.docs.conftest import RABBIT_AUTH, RABBIT_MANAGEMENT

AMQP = "amqp://{user}:{password}@127.0.0.1:5672/{vhost}"


@pytest.fixture
def rabbit_names():
    names = {"vhost": f"claw-lp-{uuid.uuid4().hex[:8]}", "user": f"claw-lp-{uuid.uuid4().hex[:8]}"}
    user = names["user"]  # a test may point names at the administrator: never delete that one
    yield names
    requests.delete(f"{RABBIT_MANAGEMENT}/api/users/{user}", auth=RABBIT_AUTH, timeout=10)
    requests.delete(f"{RABBIT_MANAGEMENT}/api/vhosts/{names['vhost']}", auth=RABBIT_AUTH, timeout=10)


def run_rabbitmq_setup(names: dict, password: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "RABBITMQ_MANAGEMENT": RABBIT_MANAGEMENT, "RABBITMQ_USER": RABBIT_AUTH[0],
           "RABBITMQ_PASSWORD": RABBIT_AUTH[1], "RABBITMQ_APP_USER": names["user"], "RABBITMQ_APP_PASSWORD": password,
           "RABBITMQ_VHOST": names["vhost"]}
    return subprocess.run([sys.executable, str(ROOT / "infra" / "rabbitmq" / "app_user.py")], env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_rabbitmq_app_user_works_in_its_vhost_only_and_administers_nothing(rabbit_names):
    user, vhost, password = rabbit_names["user"], rabbit_names["vhost"], uuid.uuid4().hex
    done = run_rabbitmq_setup(rabbit_names, password)
    assert done.returncode == 0, done.stderr

    connection = pika.BlockingConnection(pika.URLParameters(AMQP.format(user=user, password=password, vhost=quote(vhost, safe=""))))
    channel = connection.channel()
    channel.queue_declare("jobs", durable=True, arguments={"x-max-priority": 9})
    channel.basic_publish("", "jobs", b"{}", pika.BasicProperties(priority=5, delivery_mode=2))
    method, _, body = channel.basic_get("jobs", auto_ack=True)
    assert body == b"{}"
    connection.close()
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.URLParameters(AMQP.format(user=user, password=password, vhost="%2F")))

    own = (user, password)
    assert requests.get(f"{RABBIT_MANAGEMENT}/api/whoami", auth=own, timeout=10).json()["tags"] == ["management"]
    assert requests.get(f"{RABBIT_MANAGEMENT}/api/queues/{quote(vhost, safe='')}", auth=own, timeout=10).status_code == 200
    assert requests.get(f"{RABBIT_MANAGEMENT}/api/users", auth=own, timeout=10).status_code in (401, 403)
    assert requests.put(f"{RABBIT_MANAGEMENT}/api/vhosts/{vhost}-2", auth=own, timeout=10).status_code in (401, 403)
    assert requests.get(f"{RABBIT_MANAGEMENT}/api/queues/%2F", auth=own, timeout=10).status_code in (401, 403)

    # Run again (every compose start does): the password is set anew.
    assert run_rabbitmq_setup(rabbit_names, password + "2").returncode == 0
    assert requests.get(f"{RABBIT_MANAGEMENT}/api/whoami", auth=own, timeout=10).status_code == 401
    assert requests.get(f"{RABBIT_MANAGEMENT}/api/whoami", auth=(user, password + "2"), timeout=10).status_code == 200


def test_the_setup_refuses_to_make_the_administrator_the_app_user(rabbit_names):
    rabbit_names["user"] = RABBIT_AUTH[0]
    done = run_rabbitmq_setup(rabbit_names, "whatever")
    assert done.returncode != 0 and "must differ" in done.stderr


@pytest.fixture
def scratch_database():
    """(superuser URL, database name, app role) on the embedded PostgreSQL (or CLAW_TEST_DATABASE_URL); dropped after."""
    from pipeline.knowledge import db

    admin_url = os.environ.get("CLAW_TEST_DATABASE_URL") or db.embedded_server().get_uri()
    name, role = f"claw_lp_{uuid.uuid4().hex[:8]}", f"claw_lp_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield admin_url, name, role
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def with_database(url: str, database: str, user: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc if user is None else f"{user}:secret-{user}@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(path=f"/{database}", netloc=netloc).geturl()


def test_the_postgres_app_role_runs_the_migrations_and_builds_indexes_but_is_no_superuser(scratch_database):
    from pipeline.knowledge import store
    from pipeline.knowledge.migrations import upgrade

    admin_url, database, role = scratch_database
    admin = psycopg.conninfo.conninfo_to_dict(admin_url)
    env = {"PATH": os.environ["PATH"], "POSTGRES_USER": admin.get("user", "postgres"), "POSTGRES_DB": database,
           "POSTGRES_APP_USER": role, "POSTGRES_APP_PASSWORD": f"secret-{role}",
           "PGHOST": admin.get("host", "127.0.0.1"), "PGPORT": str(admin.get("port", 5432)),
           "PGPASSWORD": admin.get("password", ""), "CLAW_APP_USER_SQL": str(ROOT / "infra" / "postgres" / "app-user.sql")}
    done = subprocess.run(["sh", str(ROOT / "infra" / "postgres" / "initdb-app-user.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    app_url = with_database(admin_url, database, role)
    assert upgrade(app_url)  # every migration, as the application role
    with psycopg.connect(app_url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = current_user").fetchone() == (role, False, False, False)
        kb = store.ensure_knowledge_base(conn, "least-privilege", "test-model", 4)
        assert store.ensure_index(app_url, kb)  # CREATE INDEX CONCURRENTLY on its own table
        for statement in ("CREATE DATABASE claw_lp_other", f"CREATE ROLE {role}_2", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                          "ALTER SYSTEM SET work_mem = '1GB'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
