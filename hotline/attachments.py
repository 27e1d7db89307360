"""The attachment store: the files that came with citizens' messages, kept in the hotline's own database.

- ``record`` (the worker, in the transaction that turns a stored message into a ticket): one ``attachments`` row
  per file the message named, keyed on (message, position), so a message handled again records nothing twice.
  Files the channel says to fetch (a WeChat media_id, a Twilio recording) start ``pending``; public links (a
  forum post's image, an Open311 ``media_url``) are kept as ``linked``: the hotline downloads no address a
  stranger can name.
- ``fetch_pending`` (the worker, never a webhook: WeChat's 5 s answer must not wait for a download): claims due
  rows with a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``), downloads each through its channel's ``Fetcher``
  *outside* any transaction, with the kind's size limit (``HOTLINE_ATTACHMENT_MAX_BYTES``), then stores bytes,
  size and sha256 in one short transaction that only a row still ``fetching`` accepts, so a second worker whose
  lease overlapped stores nothing twice.
- A fetcher raises ``Refused`` when no retry can help (over the limit, WeChat's errcode for a bad media_id): the
  row becomes ``refused`` with the Chinese reason, and the ticket gets an ``attachment_refused`` event saying so.
  Anything else is retried with back-off; after ``MAX_ATTEMPTS`` the row is refused as well. The ticket itself
  was made long before: nothing is lost, nothing half-written.
- ``retry`` (desk staff, ``POST /api/attachments/{id}/retry``): a refused file goes back to ``pending`` with its
  attempts reset, for when the cause is gone (WeChat's media API was down for hours, or an admin raised the size
  limit). WeChat keeps media three days; a later retry is refused again by WeChat with its own reason.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from hotline import leases, workflow
from hotline.auth import SYSTEM, Actor
from hotline.db import transaction
from hotline.errors import Conflict
from hotline.labels import ATTACHMENT_KIND_LABELS
from hotline.models import InboundMessage, Ticket, TicketAttachment
from hotline.settings import DEFAULT_MAX_BYTES, MIB

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
MAX_ATTEMPTS = 5
PENDING, FETCHING, STORED, REFUSED, LINKED = "pending", "fetching", "stored", "refused", "linked"
REFUSED_EVENT = "attachment_refused"
RETRY_EVENT = "attachment_retry"


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str


class Refused(Exception):
    """No retry will fetch this file; ``reason`` is what the desk shows (Chinese)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


def size_words(size: int) -> str:
    return f"{size / MIB:.3g} MB" if size >= MIB else f"{max(1, round(size / 1024))} KB"


def too_large(kind: str, limit: int) -> Refused:
    """The refusal of a file over its kind's limit."""
    return Refused(f"{ATTACHMENT_KIND_LABELS.get(kind, '附件')}超过 {size_words(limit)} 的大小上限，未保存",
                   f"the {kind} is larger than the limit of {limit} bytes")


#: fetches one row's file (its ``source``) with at most ``max_bytes`` bytes: ``Fetched`` or raises (``Refused``
#: for good, anything else to be retried)
Fetcher = Callable[[TicketAttachment, int], Fetched]


def limit_for(kind: str, limits: Mapping[str, int]) -> int:
    return limits.get(kind, DEFAULT_MAX_BYTES.get(kind, DEFAULT_MAX_BYTES["document"]))


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def record(session: Session, ticket: Ticket, message: InboundMessage, now: datetime | None = None) -> int:
    """Record the files ``message`` named on ``ticket`` (see the module docstring); how many new rows."""
    items: list[dict[str, Any]] = [a for a in (message.payload.get("attachments") or []) if isinstance(a, dict)]
    now = now or datetime.now(UTC)
    added = 0
    for position, item in enumerate(items):
        source = str(item.get("media_id") or item.get("url") or "")
        if not source:
            continue
        new_id = session.execute(
            _insert(session)(TicketAttachment)
            .values(ticket_id=ticket.id, inbound_id=message.id, position=position, channel=message.channel,
                    kind=str(item.get("kind") or "document")[:16], source=source,
                    state=PENDING if item.get("fetch") else LINKED, content_type=item.get("content_type"),
                    attempts=0, next_attempt_at=now, created_at=now)
            .on_conflict_do_nothing(index_elements=["inbound_id", "position"])
            .returning(TicketAttachment.id)
        ).scalar_one_or_none()
        added += new_id is not None
    return added


def retry_delay(attempts: int) -> timedelta:
    """20 s, 80 s, 5 min 20 s …, at most an hour (WeChat keeps media three days)."""
    return timedelta(seconds=min(3600, 20 * 4 ** max(0, attempts - 1)))


@dataclass
class FetchReport:
    stored: int = 0
    retried: int = 0
    refused: int = 0

    def __bool__(self) -> bool:
        return bool(self.stored or self.retried or self.refused)


def claim(session: Session, channels: list[str], now: datetime, limit: int) -> list[int]:
    return leases.claim_due(session, TicketAttachment, waiting=PENDING, working=FETCHING, channels=channels, now=now,
                            limit=limit, lease=LEASE)


def fetch_pending(
    sessions: sessionmaker[Session], fetchers: Mapping[str, Fetcher], *, limits: Mapping[str, int] | None = None,
    limit: int = 20, now: datetime | None = None,
) -> FetchReport:
    """One pass: fetch what is due for the channels that have a fetcher (the others wait, nothing is dropped)."""
    report = FetchReport()
    if not fetchers:
        return report
    with transaction(sessions) as session:
        ids = claim(session, sorted(fetchers), now or datetime.now(UTC), limit)
    for row_id in ids:
        with sessions() as session:
            row = session.get(TicketAttachment, row_id)
            session.expunge_all()
        if row is None:
            continue
        max_bytes = limit_for(row.kind, limits or {})
        try:
            fetched = fetchers[row.channel](row, max_bytes)
            if len(fetched.content) > max_bytes:
                raise too_large(row.kind, max_bytes)
        except Refused as refusal:
            with transaction(sessions) as session:
                if _refuse(session, row_id, refusal.reason, str(refusal), now):
                    report.refused += 1
            continue
        except Exception as exc:
            log.warning("attachment %s (%s %s) not fetched: %s", row_id, row.channel, row.kind, exc)
            with transaction(sessions) as session:
                if row.attempts >= MAX_ATTEMPTS:
                    if _refuse(session, row_id, f"{ATTACHMENT_KIND_LABELS.get(row.kind, '附件')}多次获取失败，未保存",
                               f"{type(exc).__name__}: {exc}", now):
                        report.refused += 1
                    continue
                session.execute(update(TicketAttachment).where(
                    TicketAttachment.id == row_id, TicketAttachment.state == FETCHING).values(
                    state=PENDING, lease_until=None, last_error=f"{type(exc).__name__}: {exc}"[:4000],
                    next_attempt_at=(now or datetime.now(UTC)) + retry_delay(row.attempts)))
            report.retried += 1
            continue
        with transaction(sessions) as session:
            stored = session.execute(update(TicketAttachment).where(
                TicketAttachment.id == row_id, TicketAttachment.state == FETCHING).values(
                state=STORED, content=fetched.content, size=len(fetched.content),
                sha256=hashlib.sha256(fetched.content).hexdigest(), content_type=fetched.content_type[:100],
                lease_until=None, last_error=None, stored_at=now or datetime.now(UTC)))
        if stored.rowcount:  # type: ignore[attr-defined]
            report.stored += 1
    return report


def _refuse(session: Session, row_id: int, reason: str, error: str, now: datetime | None) -> bool:
    """Mark the row refused and say so on its ticket; False when another worker has already finished it."""
    done = session.execute(update(TicketAttachment).where(
        TicketAttachment.id == row_id, TicketAttachment.state == FETCHING).values(
        state=REFUSED, reason=reason, last_error=error[:4000], lease_until=None))
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    row = session.get(TicketAttachment, row_id)
    ticket = session.get(Ticket, row.ticket_id) if row is not None else None
    if row is not None and ticket is not None:
        workflow.record_event(session, ticket, REFUSED_EVENT, SYSTEM, note=reason,
                              data={"attachment_id": row.id, "kind": row.kind}, now=now)
    return True


def retry(session: Session, row: TicketAttachment, ticket: Ticket, actor: Actor,
          now: datetime | None = None) -> None:
    """Send a refused file back to the fetcher (due at once, attempts from zero) and say so on its ticket.

    A conditional update, so two people pressing the button at once make one retry and one 409."""
    now = now or datetime.now(UTC)
    previous = row.reason or ""
    done = session.execute(update(TicketAttachment).where(
        TicketAttachment.id == row.id, TicketAttachment.state == REFUSED).values(
        state=PENDING, attempts=0, next_attempt_at=now, lease_until=None, reason=None))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"attachment {row.id} is not refused; only refused attachments are fetched again",
                       zh="只有未能保存的附件可以重新获取（此附件已在获取或已保存）")
    kind = ATTACHMENT_KIND_LABELS.get(row.kind, "附件")
    workflow.record_event(session, ticket, RETRY_EVENT, actor, note=f"重新获取{kind}（上次原因：{previous}）",
                          data={"attachment_id": row.id, "kind": row.kind}, now=now)


def of_ticket(session: Session, ticket_id: int) -> list[TicketAttachment]:
    """A ticket's attachments, oldest first, without their bytes."""
    return list(session.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == ticket_id)
                                .order_by(TicketAttachment.id)))
