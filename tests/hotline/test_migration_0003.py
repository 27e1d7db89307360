"""Migration 0003 does to existing rows what the workflow now does on each transition (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hotline.db import make_engine, make_sessionmaker
from hotline.migrate import upgrade
from hotline.models import Status, Ticket
from hotline.workflow import NOTICES_DONE
from tests import infra

#: the states whose clock ran when 0003 was written (a send-back stopped counting only later, issue 13): the
#: migration is history and keeps its own list
DEADLINE_STATES = frozenset({Status.dispatched, Status.signed, Status.returned})


@pytest.fixture(params=["sqlite", "postgresql"])
def db_at_0002(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else infra.fresh_postgres_database()
    upgrade(url, "0002")
    return url


def test_0003_takes_finished_tickets_out_of_the_sweep(db_at_0002: str) -> None:
    engine = make_engine(db_at_0002)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    with sessions() as s:
        for i, status in enumerate(Status):
            s.add(Ticket(
                number=f"2026112200{i:04d}", channel="phone", text="占道经营", status=status,
                notice_level=1, extension_pending=True, sign_due=now, reply_due=now + timedelta(days=1),
                reply_warn_at=now, escalate_at=now + timedelta(days=4), callback_due=now,
            ))
        s.commit()
    upgrade(db_at_0002)
    with sessions() as s:
        rows = {t.status: t for t in s.scalars(select(Ticket))}
    engine.dispose()
    for status, t in rows.items():
        if status in DEADLINE_STATES:
            assert t.notice_level == 1, status  # still chased, with what it already had
        elif status == Status.awaiting_citizen:
            assert t.notice_level == 1  # the provide_info resume reads the level of the paused round from here
        else:
            assert t.notice_level == NOTICES_DONE, status
        assert t.extension_pending == (status in ("dispatched", "signed", "awaiting_citizen")), status
        assert t.version == 1, status
    reopened = rows[Status.reopened]
    assert (reopened.sign_due, reopened.reply_due, reopened.reply_warn_at, reopened.escalate_at,
            reopened.callback_due) == (None, None, None, None, None)
    assert rows[Status.signed].reply_due is not None
