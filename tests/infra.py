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


class ThrowawayPostgres:
    """A PostgreSQL server of its own (initdb in a temporary directory, a free port) that a test may stop and start
    again without disturbing any other test. ``None`` from ``create`` when the binaries are missing."""

    def __init__(self, data: str, port: int, pg_ctl: str, run_as: list[str]) -> None:
        self.data, self.port, self._pg_ctl, self._run_as = data, port, pg_ctl, run_as
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    @classmethod
    def create(cls) -> ThrowawayPostgres | None:
        initdb, pg_ctl = _find_pg_bin("initdb"), _find_pg_bin("pg_ctl")
        if not initdb or not pg_ctl or (os.geteuid() == 0 and not shutil.which("runuser")):
            return None
        data = tempfile.mkdtemp(prefix="hotline-pg-")
        run_as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(data, "postgres", "postgres")
            run_as = ["runuser", "-u", "postgres", "--"]
        try:
            subprocess.run([*run_as, initdb, "-D", data, "-U", "postgres", "--auth=trust"], check=True,
                           capture_output=True, timeout=120)
        except (subprocess.SubprocessError, OSError):
            return None
        server = cls(data, _free_port(), pg_ctl, run_as)
        atexit.register(server.stop)
        try:
            server.start()
        except (subprocess.SubprocessError, OSError):
            return None
        return server if _pg_ok(server.url) else None

    def start(self) -> None:
        subprocess.run([*self._run_as, self._pg_ctl, "-D", self.data, "-o",
                        f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "-w", "start",
                        "-l", f"{self.data}/log"], check=True, capture_output=True, timeout=60)

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: as a crash (no checkpoint, connections cut); ``fast``: an administrator's restart."""
        subprocess.run([*self._run_as, self._pg_ctl, "-D", self.data, "-m", mode, "-w", "stop"],
                       capture_output=True, check=False, timeout=60)

    def database(self) -> str:
        """A fresh database on this server, migrated to the latest schema."""
        import psycopg

        from hotline.migrate import upgrade

        name = f"hotline_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url.rsplit("/", 1)[0] + "/" + name
        upgrade(url)
        return url


def throwaway_postgres() -> ThrowawayPostgres:
    server = ThrowawayPostgres.create()
    if server is None:
        unavailable("a throwaway PostgreSQL", "initdb/pg_ctl are not installed or could not start a server")
        raise AssertionError("unreachable")
    return server


@lru_cache
def postgres_server() -> str | None:
    """A server URL (database 'postgres'-level admin access), or None."""
    url = os.environ.get("HOTLINE_TEST_POSTGRES_URL", DEFAULT_PG)
    if _pg_ok(url):
        return url
    server = ThrowawayPostgres.create()
    return server.url if server is not None else None


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


class ThrowawayRedis:
    """A redis-server of its own on a free port, to stop and start again in a test (no persistence)."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    def start(self) -> None:
        self._proc = subprocess.Popen([self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _redis_ok(self.url):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """As a crash: SIGKILL, every connection cut at once."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


def throwaway_redis() -> ThrowawayRedis:
    binary = shutil.which("redis-server")
    if not binary:
        unavailable("a throwaway Redis", "redis-server is not installed")
        raise AssertionError("unreachable")
    server = ThrowawayRedis(binary)
    server.start()
    return server


@lru_cache
def redis_url() -> str | None:
    url = os.environ.get("HOTLINE_TEST_REDIS_URL", DEFAULT_REDIS)
    if _redis_ok(url):
        return url
    binary = shutil.which("redis-server")
    if not binary:
        return None
    server = ThrowawayRedis(binary)
    try:
        server.start()
    except RuntimeError:
        return None
    return server.url


def require_redis() -> str:
    url = redis_url()
    if url is None:
        unavailable("Redis", "no server on 127.0.0.1:6379 and redis-server is not installed")
        raise AssertionError("unreachable")
    return url
