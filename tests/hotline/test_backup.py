"""`hotline backup` / `hotline restore` keep every row of every table, on PostgreSQL (pg_dump/pg_restore) and on
the embedded SQLite (online backup API): tables are compared generically, by row count and checksum."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from hotline import inbound, outbox
from hotline.services import Services
from tests import infra
from tests.conftest import REPO, City, act, submit


def snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Every table (whatever tables a later migration adds): its row count and a checksum over its sorted rows."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            result = {}
            for table in tables:
                rows = sorted(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"')))
                result[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        return result
    finally:
        engine.dispose()


def hotline(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def fill(client: TestClient, city: City, services: Services) -> None:
    """Tickets with their events, a dispatched one, a stored channel message and an outbox row."""
    first = submit(client, city, "东湖区建设路路灯不亮，晚上很黑")
    submit(client, city, "澄江街道有人占道经营", citizen={"name": "张三", "phone": "13912345678"})
    assert act(client, city, "agent", first["id"], "dispatch", unit_id=city.ids["unit:cjjd"]).status_code == 200
    with services.sessions() as session:
        inbound.accept(session, inbound.Inbound(channel="web", external_id="web-1", text="小区门口垃圾没人清运"))
        outbox.enqueue(session, channel="phone", kind="sms", key="sms-1", payload={"text": "您的诉求已受理"},
                       recipient="13912345678", ticket_id=first["id"])
        session.commit()


def test_a_backup_restored_elsewhere_and_over_newer_data_has_every_row(
    client: TestClient, city: City, services: Services, db_url: str, tmp_path: Path
) -> None:
    fill(client, city, services)
    before = snapshot(db_url)
    for table in ("tickets", "ticket_events", "outbox", "inbound_messages", "citizens", "users", "alembic_version"):
        assert before[table][0] > 0, f"{table} should hold rows for the comparison to mean something"

    archive = tmp_path / "backups" / "hotline.backup"
    made = hotline("backup", "--out", str(archive), db_url=db_url)
    assert made.returncode == 0, made.stderr
    assert archive.stat().st_size > 0 and not list(archive.parent.glob("*.partial"))

    elsewhere = (f"sqlite:///{tmp_path / 'restored.db'}" if db_url.startswith("sqlite")
                 else infra.fresh_postgres_database())
    refused = hotline("restore", "--from", str(archive), db_url=elsewhere)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    restored = hotline("restore", "--from", str(archive), "--yes", db_url=elsewhere)
    assert restored.returncode == 0, restored.stderr
    assert snapshot(elsewhere) == before

    submit(client, city, "西山区公交站牌倒了")  # newer than the backup: a restore over it takes the database back
    assert snapshot(db_url) != before
    services.engine.dispose()
    back = hotline("restore", "--from", str(archive), "--yes", db_url=db_url)
    assert back.returncode == 0, back.stderr
    assert snapshot(db_url) == before
    submit(client, city, "西山区公交站牌倒了")  # sequences were restored too: new rows get fresh ids


def test_backup_of_a_missing_database_or_restore_of_a_broken_file_says_why(tmp_path: Path) -> None:
    missing = hotline("backup", "--out", str(tmp_path / "b.db"), db_url=f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 2 and "no database at" in missing.stderr
    broken = tmp_path / "broken.backup"
    broken.write_bytes(b"not a database at all" * 100)
    refused = hotline("restore", "--from", str(broken), "--yes", db_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert refused.returncode == 2 and "not an intact SQLite database" in refused.stderr
