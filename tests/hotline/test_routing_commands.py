"""``python -m hotline.routing_commands calendar ...`` through a real subprocess (no database, no network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hotline.routing_commands import main

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.routing_commands", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_calendar_add_hours_subprocess() -> None:
    proc = run("calendar", "add", "--start", "2026-09-30T16:00", "--hours", "8")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2026-10-08T16:30:00+08:00\n"
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--start", "2026-09-30T16:00", "--days", "3"], "2026-10-10T16:00:00+08:00"),
        (["--start", "2026-09-30T08:00Z", "--hours", "8"], "2026-10-08T16:30:00+08:00"),
        (["--start", "2026-09-30T16:00", "--hours", "24", "--clock"], "2026-10-01T16:00:00+08:00"),
        (
            ["--start", "2026-09-30T16:00", "--hours", "8", "--holiday", "2026-10-08"],
            "2026-10-09T16:30:00+08:00",
        ),
        # --tz is the city's zone: office hours are read in it, too
        (["--start", "2026-09-30T16:00", "--hours", "8", "--tz", "UTC"], "2026-10-08T16:30:00+00:00"),
    ],
)
def test_calendar_add_variants(args: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "add", *args]) == 0
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--start", "yesterday", "--hours", "8"],
        ["--start", "2026-09-30T16:00"],
        ["--start", "2026-09-30T16:00", "--hours", "8", "--days", "1"],
        ["--start", "2026-09-30T16:00", "--hours", "8", "--tz", "Mars/Olympus"],
        ["--start", "2026-09-30T16:00", "--hours", "nan"],
        ["--start", "2026-09-30T16:00", "--hours", "eight"],
        ["--start", "2026-09-30T16:00", "--hours", "8", "--holiday", "2026-13-01"],
    ],
)
def test_bad_input_one_line_exit_2(args: list[str]) -> None:
    proc = run("calendar", "add", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "error" in lines[0], proc.stderr


def test_between_and_years(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "between", "--start", "2026-09-30T16:00", "--end", "2026-10-08T16:30"]) == 0
    assert capsys.readouterr().out == "8\n"
    assert main(["calendar", "years"]) == 0
    assert "2026" in capsys.readouterr().out


def test_calendar_add_city_reads_the_citys_overrides_and_office_hours(sqlite_template: Path, tmp_path: Path) -> None:
    import os
    import shutil
    from datetime import date

    from hotline.db import make_engine, make_sessionmaker
    from hotline.models import CalendarOverride

    db = tmp_path / "city.db"
    shutil.copy(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    with make_sessionmaker(engine)() as session:
        session.add(CalendarOverride(day=date(2026, 10, 8), working=False, note="本地节日"))
        session.commit()
    engine.dispose()
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": f"sqlite:///{db}",
           "HOTLINE_OFFICE_HOURS": "09:00-12:00,14:00-18:00"}
    proc = subprocess.run([sys.executable, "-m", "hotline.cli", "calendar", "add", "--start", "2026-09-30T16:00",
                           "--hours", "8", "--city"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # 2 h on 9-30 (16:00-18:00), National Day, the city's 10-08 off, then 09:00-12:00 and 14:00-17:00 on 10-09
    assert proc.stdout.strip().splitlines()[-1] == "2026-10-09T17:00:00+08:00"
    assert run("calendar", "add", "--start", "2026-09-30T16:00", "--hours", "8").stdout == (
        "2026-10-08T16:30:00+08:00\n")  # without --city: the national schedule
