"""The ``hotline`` command as scripts and admins use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def hotline(*args: str, db: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=check)


def test_migrate_create_and_list_users(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    hotline("migrate", db=db)
    out = hotline("users", "create", "lisi", "--password", "secret-pass-1", "--role", "agent", db=db)
    assert "created user lisi" in out.stdout
    listed = json.loads(hotline("users", "list", "--json", db=db).stdout)
    assert listed == [{"username": "lisi", "role": "agent", "unit_id": None}]


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    hotline("migrate", db=db)
    r = hotline("users", "create", "x", "--password", "short", "--role", "agent", db=db, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = hotline("users", "create", "wang", "--password", "long-enough-1", "--role", "unit_handler", db=db,
                check=False)
    assert r.returncode == 2 and "unit_id" in r.stderr


def test_production_mode_refuses_demo_secrets(tmp_path: Path) -> None:
    env = {**os.environ, "HOTLINE_DEMO": "0", "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    env.pop("HOTLINE_SECRET_KEY", None)
    r = subprocess.run([sys.executable, "-m", "hotline.cli", "migrate"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "HOTLINE_SECRET_KEY" in r.stderr


@pytest.mark.parametrize("argv", [["--help"], ["users", "--help"]])
def test_help(argv: list[str], tmp_path: Path) -> None:
    assert hotline(*argv, db=tmp_path / "h.db").returncode == 0


def test_calendar_add_prints_the_deadline_in_the_city_zone(tmp_path: Path) -> None:
    out = hotline("calendar", "add", "--start", "2026-09-30T16:00", "--hours", "8", db=tmp_path / "c.db")
    assert out.stdout.strip() == "2026-10-08T16:30:00+08:00"


def test_worker_once_sweeps_and_exits(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    hotline("migrate", db=db)
    r = hotline("worker", "--once", db=db)
    assert "deadline sweep" in r.stderr
