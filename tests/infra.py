"""Real PostgreSQL and Redis for the tests, found or started; skipped with a reason only outside CI.

Order of preference: the URL in HOTLINE_TEST_POSTGRES_URL / HOTLINE_TEST_REDIS_URL; the machine's own server on
the default port; a throwaway server started here from the installed binaries (initdb/pg_ctl, redis-server).
With CI=true a missing server is an error, never a skip.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from functools import lru_cache

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def unavailable(what: str, why: str) -> None:
    message = f"{what} is not available ({why}); install it or set the HOTLINE_TEST_* URL"
    if IN_CI:
        pytest.fail(f"CI requires {message}", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_ok(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3) as conn:
            conn.execute("select 1")
        return True
    except Exception:
        return False


def _find_pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@lru_cache
def postgres_server() -> str | None:
    """A server URL (database 'postgres'-level admin access), or None."""
    url = os.environ.get("HOTLINE_TEST_POSTGRES_URL", DEFAULT_PG)
    if _pg_ok(url):
        return url
    initdb, pg_ctl = _find_pg_bin("initdb"), _find_pg_bin("pg_ctl")
    if not initdb or not pg_ctl or (os.geteuid() == 0 and not shutil.which("runuser")):
        return None
    data = tempfile.mkdtemp(prefix="hotline-pg-")
    port = _free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*run_as, initdb, "-D", data, "-U", "postgres", "--auth=trust"], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([*run_as, pg_ctl, "-D", data, "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
                        "-w", "start", "-l", f"{data}/log"], check=True, capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError):
        return None
    atexit.register(lambda: subprocess.run([*run_as, pg_ctl, "-D", data, "-m", "immediate", "stop"],
                                           capture_output=True, check=False))
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    return url if _pg_ok(url) else None


def fresh_postgres_database() -> str:
    """Create a database of our own (so parallel runs and the developer's data never collide)."""
    import psycopg

    server = postgres_server()
    if server is None:
        unavailable("PostgreSQL", "no server on 127.0.0.1:5432 and none could be started")
        raise AssertionError("unreachable")
    name = f"hotline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        try:
            with psycopg.connect(server.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception:
            pass

    atexit.register(drop)
    return server.rsplit("/", 1)[0] + "/" + name


def _redis_ok(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except Exception:
        return False


@lru_cache
def redis_url() -> str | None:
    url = os.environ.get("HOTLINE_TEST_REDIS_URL", DEFAULT_REDIS)
    if _redis_ok(url):
        return url
    binary = shutil.which("redis-server")
    if not binary:
        return None
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        if _redis_ok(url):
            return url
        time.sleep(0.1)
    return None


def require_redis() -> str:
    url = redis_url()
    if url is None:
        unavailable("Redis", "no server on 127.0.0.1:6379 and redis-server is not installed")
        raise AssertionError("unreachable")
    return url
