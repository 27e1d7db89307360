"""``hotline backup`` / ``hotline restore``: one command for both storages.

- **PostgreSQL** (production): ``pg_dump -Fc`` (a compressed archive with schema, data and sequence positions,
  consistent as of one snapshot while the service keeps running) and ``pg_restore --clean --if-exists
  --single-transaction --exit-on-error`` (all or nothing). The binaries are the newest on ``PATH`` or under
  ``/usr/lib/postgresql/*/bin``; they must be at least the server's major version. The password, if the URL has
  one, goes to them in ``PGPASSWORD``, never on a command line other processes can read.
- **SQLite** (the embedded default): sqlite3's online backup API, page by page under the database's own locks, so
  the copy is consistent even while the server writes (WAL included); written to a temporary file beside the
  target and renamed into place, so a failed backup never leaves half a file under the real name. Restore copies
  the backup into the database the same way; stop the server first (it keeps its connections open).
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import URL, make_url


class BackupError(Exception):
    """A backup or restore could not be done; the message says why in a way an operator can act on."""


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _pg_binary(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    found = candidates[-1] if candidates else shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _pg_args(url: URL) -> tuple[list[str], dict[str, str]]:
    args = [f"--dbname={url.database}"]
    if url.host:
        args.append(f"--host={url.host}")
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--username={url.username}")
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def backup(database_url: str, out: Path) -> Path:
    """Write a backup of the database to ``out`` (PostgreSQL: a ``pg_dump -Fc`` archive; SQLite: a database file)."""
    url = make_url(database_url)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        if url.get_backend_name() == "sqlite":
            source_path = _sqlite_path(url)
            if not source_path.exists():
                raise BackupError(f"no database at {source_path}")
            with closing(sqlite3.connect(source_path)) as source, closing(sqlite3.connect(partial)) as target:
                source.backup(target)
        elif url.get_backend_name() == "postgresql":
            args, env = _pg_args(url)
            _run([_pg_binary("pg_dump"), "--format=custom", f"--file={partial}", *args], env)
        else:
            raise BackupError(f"backups of {url.get_backend_name()} databases are not supported")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def restore(database_url: str, source: Path) -> None:
    """Replace the database's contents with the backup at ``source`` (all or nothing)."""
    url = make_url(database_url)
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    if url.get_backend_name() == "sqlite":
        target_path = _sqlite_path(url)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup_db:
            try:
                intact = backup_db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            except sqlite3.DatabaseError:
                intact = False
            if not intact:
                raise BackupError(f"{source} is not an intact SQLite database")
            with closing(sqlite3.connect(target_path)) as target:
                backup_db.backup(target)
    elif url.get_backend_name() == "postgresql":
        args, env = _pg_args(url)
        _run([_pg_binary("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--exit-on-error", *args, str(source)], env)
    else:
        raise BackupError(f"restoring {url.get_backend_name()} databases is not supported")
