"""Two test runs on one machine never share a PostgreSQL test database, and a killed run's
database is dropped by the next run, safely (tests/run_database.py)."""

import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.run_database import PREFIX, drop_stray_databases, host_tag, run_database_name, stray_databases

ADMIN = {"dbname": "postgres", "user": "postgres", "host": "127.0.0.1", "port": 5432}


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_each_run_has_its_own_name():
    assert run_database_name() == f"{PREFIX}_{host_tag()}_{os.getpid()}"
    assert run_database_name(12345) != run_database_name(12346)


@pytest.mark.django_db
def test_this_run_uses_its_own_database():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL pass only (SQLite test databases are in memory, one per run)")
    assert connection.settings_dict["NAME"] == run_database_name()


def test_only_this_hosts_databases_of_dead_runs_are_stray():
    gone, alive = dead_pid(), os.getppid()
    names = [run_database_name(gone), run_database_name(alive), run_database_name(),
             f"{PREFIX}_deadbeef_{gone}", "supervision", f"{PREFIX}_{host_tag()}_{gone}_x"]
    assert stray_databases(names) == [run_database_name(gone)]


def test_a_killed_runs_database_is_dropped_and_a_live_one_kept():
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(connect_timeout=3, **ADMIN).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed, running = run_database_name(dead_pid()), run_database_name(sleeper.pid)
    try:
        with psycopg.connect(autocommit=True, **ADMIN) as conn:
            for name in (killed, running):
                conn.execute(f'CREATE DATABASE "{name}"')
        dropped = drop_stray_databases(**ADMIN)
        with psycopg.connect(autocommit=True, **ADMIN) as conn:
            left = {row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                                                   [[killed, running]])}
        assert killed in dropped and left == {running}
    finally:
        sleeper.kill()
        sleeper.wait()
        with psycopg.connect(autocommit=True, **ADMIN) as conn:
            for name in (killed, running):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
