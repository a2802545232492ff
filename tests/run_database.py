"""Each test run on PostgreSQL gets its own database: `test_supervision_<host>_<pid>`, so two runs
on one machine (two checkouts, a parallel job, a bench) never drop or fill each other's tables.

A run that was killed leaves its database behind; the next run on the same host drops those whose
process is gone. Nothing else is touched: only names of this pattern, only this host's, only for
a process id that no longer exists, and only when nobody is connected (no FORCE).
"""

import hashlib
import os
import re
import socket

PREFIX = "test_supervision"


def host_tag():
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def run_database_name(pid=None):
    return f"{PREFIX}_{host_tag()}_{pid or os.getpid()}"


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def stray_databases(names):
    """The names among `names` left by this host's runs whose process is gone."""
    pattern = re.compile(rf"{PREFIX}_{host_tag()}_(\d+)")
    stray = []
    for name in names:
        match = pattern.fullmatch(name)
        if match and int(match.group(1)) != os.getpid() and not process_alive(int(match.group(1))):
            stray.append(name)
    return stray


def drop_stray_databases(**connection):
    """Drop the databases killed runs left behind (`connection`: psycopg.connect's keywords for
    the server's `postgres` database); one still in use is left alone."""
    import psycopg

    dropped = []
    with psycopg.connect(autocommit=True, **connection) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                [f"{PREFIX}_%"])]
        for name in stray_databases(names):
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                dropped.append(name)
            except psycopg.errors.ObjectInUse:
                pass
    return dropped
