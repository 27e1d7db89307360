"""The demo city on a fresh PostgreSQL database: the set-up the intake benchmarks share.

``bench/intake_load.py`` and ``bench/intake_cpu.py`` measure the intake of the city ``make run`` serves: a database of
their own (so a benchmark never touches a developer's data and runs beside the tests), migrated, the starter model
trained and the demo city seeded, as an operator would with ``hotline migrate``, ``hotline nlp starter`` and
``hotline seed-demo``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REDIS = "redis://127.0.0.1:6379/0"

sys.path.insert(0, str(ROOT))

from tests import infra  # noqa: E402


def demo_city(model_dir: Path, extra_env: dict[str, str] | None = None,
              log: IO[bytes] | None = None) -> tuple[str, dict[str, str]]:
    """A new database (dropped when the benchmark exits) with the demo city; returns its SQLAlchemy URL and the
    environment ``hotline`` commands run with (demo secrets, the database, Redis, ``model_dir``)."""
    url = infra.fresh_postgres_database()
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": url, "HOTLINE_REDIS_URL": REDIS,
           "HOTLINE_MODEL_DIR": str(model_dir), **(extra_env or {})}
    for step in (["migrate"], ["nlp", "starter"], ["seed-demo"]):
        subprocess.run([str(BIN / "hotline"), *step], cwd=ROOT, env=env, check=True,
                       stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)
    return url, env


def libpq_dsn(url: str) -> str:
    """The URL for psycopg/asyncpg (SQLAlchemy's names the driver)."""
    return url.replace("+psycopg", "")
