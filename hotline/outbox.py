"""The outbox: whatever goes to a citizen or an outside system (SMS, a WeChat message, a forum reply, an outbound
call) is a row written in the transaction of the change that causes it, and sent by the worker afterwards.

- ``enqueue`` in the caller's transaction, idempotent on ``key`` (the same notice queued twice is one row), so a
  rolled-back change sends nothing and a committed one cannot be forgotten.
- ``send_pending`` (the worker): claims due rows with a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``; several
  workers never send the same row at once), calls the channel's sender *outside* any transaction, then marks the row
  ``sent`` with the provider's id. A worker that dies between sending and marking leaves the lease to expire; the row
  is sent again **with the same idempotency key**, which the receiver uses to drop the repeat (Twilio's
  ``I-Twilio-Idempotency-Token``; see each channel's sender for what its receiver offers).
- A sender may raise ``Postpone(until)`` when the row may not go out yet (an outbound call outside calling hours):
  it waits until then, and the try is not counted.
- A failing send is retried with back-off; ``PermanentFailure`` (a 4xx that no retry can fix) or ``MAX_ATTEMPTS``
  parks it as ``failed`` with the error. The state of every row is shown on its ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from hotline import leases
from hotline.db import transaction
from hotline.models import OutboxMessage

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
MAX_ATTEMPTS = 6
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"

#: sends one row; returns the provider's id for it (message SID, msgid …) or None
Sender = Callable[[OutboxMessage], str | None]


class PermanentFailure(Exception):
    """The receiver refused the message for good (bad number, unknown user): do not retry."""


class Postpone(Exception):
    """Not now (e.g. outside calling hours): send the row at ``until``; this try is not counted."""

    def __init__(self, until: datetime, reason: str = "") -> None:
        super().__init__(reason or f"postponed until {until.isoformat()}")
        self.until = until


def enqueue(
    session: Session, *, channel: str, kind: str, key: str, payload: dict[str, Any], recipient: str = "",
    ticket_id: int | None = None, now: datetime | None = None, due: datetime | None = None,
) -> None:
    """Queue a message in the caller's transaction; a second call with the same ``key`` changes nothing.
    ``due``: not before this moment (default: at once)."""
    insert: Any = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(OutboxMessage)
        .values(channel=channel, kind=kind, idempotency_key=key[:80], payload=payload, recipient=recipient,
                ticket_id=ticket_id, state=PENDING, attempts=0, next_attempt_at=due or now or datetime.now(UTC),
                created_at=now or datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )


def retry_delay(attempts: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min …, at most 2 hours."""
    return timedelta(seconds=min(7200, 30 * 4 ** max(0, attempts - 1)))


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def __bool__(self) -> bool:
        return bool(self.sent or self.retried or self.failed)


def claim(session: Session, channels: list[str], now: datetime, limit: int) -> list[int]:
    return leases.claim_due(session, OutboxMessage, waiting=PENDING, working=SENDING, channels=channels, now=now,
                            limit=limit, lease=LEASE)


def send_pending(
    sessions: sessionmaker[Session], senders: Mapping[str, Sender], *, limit: int = 50, now: datetime | None = None,
) -> SendReport:
    """One pass: send what is due for the channels that have a sender (the others wait, nothing is dropped)."""
    report = SendReport()
    if not senders:
        return report
    with transaction(sessions) as session:
        ids = claim(session, sorted(senders), now or datetime.now(UTC), limit)
    for row_id in ids:
        with sessions() as session:
            row = session.get(OutboxMessage, row_id)
            session.expunge_all()
        if row is None:
            continue
        try:
            provider_id = senders[row.channel](row)
        except Postpone as later:
            with transaction(sessions) as session:
                session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                    state=PENDING, next_attempt_at=later.until, lease_until=None,
                    attempts=OutboxMessage.attempts - 1, last_error=str(later)))
            continue
        except Exception as exc:
            permanent = isinstance(exc, PermanentFailure)
            log.warning("outbox %s (%s %s) not sent: %s", row_id, row.channel, row.kind, exc)
            with transaction(sessions) as session:
                failed = _record_failure(session, row_id, exc, permanent, now or datetime.now(UTC))
            if failed:
                report.failed += 1
            else:
                report.retried += 1
            continue
        with transaction(sessions) as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                state=SENT, sent_at=now or datetime.now(UTC), provider_id=provider_id, lease_until=None,
                last_error=None))
        report.sent += 1
    return report


def _record_failure(session: Session, row_id: int, exc: Exception, permanent: bool, now: datetime) -> bool:
    row = session.get(OutboxMessage, row_id)
    if row is None or row.state == SENT:
        return False
    row.last_error = f"{type(exc).__name__}: {exc}"[:4000]
    row.lease_until = None
    if permanent or row.attempts >= MAX_ATTEMPTS:
        row.state = FAILED
        return True
    row.state, row.next_attempt_at = PENDING, now + retry_delay(row.attempts)
    return False
