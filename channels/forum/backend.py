"""The hotline behind the forum router: pushed and polled posts through the one intake point, and the official
replies waiting to be posted back, over the database.

- A post (pushed, or found in a board's feed by ``channels.forum.poll``) is accepted with ``hotline.inbound.accept``
  under channel ``forum`` and the post's key (host of the thread link + thread id), so a thread both pushed and
  polled, or pushed three times, is one message and one ticket. The board's slug is kept in the stored message
  (``raw.board``): it is how a reply finds its way back to the right board.
- The reply feed of a board lists every ``reply`` event (办结答复) on a ticket that came from that board and is not
  confidential, oldest first, unless it is marked posted. ``reply_id`` is the event's id.
- Marking posted writes an outbox row (channel ``forum``, kind ``reply``, key ``forum-reply:<event id>``) in state
  ``sent`` with the post's URL as its provider id: the ticket's delivery record shows the reply went up, when, and
  where; a second mark of the same reply changes nothing. Reply ids that are not pending replies of the board are
  ignored (not counted).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import String, and_, cast, literal, select, update
from sqlalchemy.orm import Session

from channels.forum.feeds import ForumPost
from channels.forum.push import PushedPost
from channels.forum.replies import OfficialReply, RepliesPosted
from channels.forum.routes import ForumBackend, forum_router
from hotline import inbound, outbox
from hotline.db import transaction
from hotline.errors import Invalid
from hotline.models import InboundMessage, OutboxMessage, Ticket, TicketEvent, Unit
from hotline.services import Services

log = logging.getLogger(__name__)

CHANNEL = "forum"
REPLY_KIND = "reply"
REPLY_KEY_PREFIX = "forum-reply:"
MAX_EXTERNAL_ID = 128  # inbound_messages.external_id
MAX_PENDING = 200


def external_id(key: str) -> str:
    """The post's key as the intake's external id: keys over 128 characters keep a head and their SHA-256."""
    if len(key) <= MAX_EXTERNAL_ID:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[: MAX_EXTERNAL_ID - len(digest) - 1]}#{digest}"


def pushed_message(board: str, post: PushedPost) -> inbound.Inbound:
    return inbound.Inbound(
        channel=CHANNEL, external_id=external_id(post.key), title=post.title, text=post.text,
        citizen_phone=post.contact_phone, place_text=post.place,
        attachments=tuple(inbound.Attachment(kind="image", url=str(url)) for url in post.images),
        raw={**post.as_raw(), "board": board},
    )


def polled_message(post: ForumPost) -> inbound.Inbound:
    return inbound.Inbound(channel=CHANNEL, external_id=external_id(post.key), title=post.title, text=post.text,
                           raw=post.as_raw())


def _reply_key() -> Any:
    return literal(REPLY_KEY_PREFIX) + cast(TicketEvent.id, String)


def _board_replies(board: str) -> Any:
    """reply events on the board's tickets with what the feed shows, oldest first (without the posted filter)."""
    return (
        select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.note, TicketEvent.created_at, Ticket.number,
               Unit.name.label("unit"), InboundMessage.payload)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .join(InboundMessage, and_(InboundMessage.ticket_id == Ticket.id, InboundMessage.channel == CHANNEL))
        .outerjoin(Unit, Unit.id == TicketEvent.unit_id)
        .where(TicketEvent.type == "reply", Ticket.confidential.is_(False),
               InboundMessage.payload["raw"]["board"].as_string() == board)
        .order_by(TicketEvent.id)
    )


def _posted() -> Any:
    return select(OutboxMessage.id).where(OutboxMessage.idempotency_key == _reply_key(),
                                          OutboxMessage.state == outbox.SENT).exists()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ForumHotline:
    """The functions of ``ForumBackend`` over the hotline's database."""

    services: Services

    def backend(self) -> ForumBackend:
        return ForumBackend(accept=self.accept, pending_replies=self.pending_replies, mark_posted=self.mark_posted,
                            throttle=self.services.rate_limiter.webhook)

    def accept(self, board: str, post: PushedPost) -> bool:
        with transaction(self.services.sessions) as session:
            accepted = inbound.accept(session, pushed_message(board, post),
                                      max_text_chars=self.services.settings.max_text_chars)
        return accepted.duplicate

    def pending_replies(self, board: str) -> list[OfficialReply]:
        with self.services.sessions() as session:
            rows = session.execute(_board_replies(board).where(~_posted()).limit(MAX_PENDING)).all()
        seen: set[int] = set()
        replies = []
        for row in rows:
            if row.id in seen:  # a ticket joined by a second message of the board
                continue
            seen.add(row.id)
            raw = row.payload.get("raw") or {}
            replies.append(OfficialReply(
                reply_id=row.id, ticket_number=row.number, thread_link=str(raw.get("link") or ""),
                thread_title=str(raw.get("title") or ""), reply_text=row.note, unit=row.unit or "承办单位",
                replied_at=_aware(row.created_at)))
        return replies

    def mark_posted(self, board: str, marks: RepliesPosted) -> int:
        urls = {mark.reply_id: (str(mark.post_url) if mark.post_url else None) for mark in marks.posted}
        now = datetime.now(UTC)
        marked = 0
        with transaction(self.services.sessions) as session:
            rows = session.execute(_board_replies(board).where(TicketEvent.id.in_(urls))).all()
            for event_id, ticket_id in dict.fromkeys((row.id, row.ticket_id) for row in rows):
                marked += _mark_one(session, board, event_id, ticket_id, urls[event_id], marks.posted_by, now)
        log.info("forum board %s: %d replies marked posted", board, marked)
        return marked


def _mark_one(session: Session, board: str, event_id: int, ticket_id: int, post_url: str | None, posted_by: str,
              now: datetime) -> int:
    key = f"{REPLY_KEY_PREFIX}{event_id}"
    outbox.enqueue(session, channel=CHANNEL, kind=REPLY_KIND, key=key, recipient=board, ticket_id=ticket_id,
                   payload={"board": board, "reply_id": event_id, "post_url": post_url, "posted_by": posted_by},
                   now=now)
    changed = session.execute(
        update(OutboxMessage).where(OutboxMessage.idempotency_key == key, OutboxMessage.state != outbox.SENT)
        .values(state=outbox.SENT, sent_at=now, provider_id=(post_url or "")[:128] or None, attempts=1,
                lease_until=None, last_error=None).returning(OutboxMessage.id)
    ).scalar_one_or_none()
    return 0 if changed is None else 1


def accept_posts(session: Session, posts: Sequence[ForumPost], max_text_chars: int) -> int:
    """Accept the posts a feed poll found, in the caller's transaction; how many were new. A post the intake
    refuses (too long for this city's limit) is logged and skipped, never stops the others."""
    new = 0
    for post in posts:
        try:
            accepted = inbound.accept(session, polled_message(post), max_text_chars=max_text_chars)
        except Invalid as refused:
            log.warning("forum post %s of board %s refused: %s", post.key, post.board, refused.message)
            continue
        new += 0 if accepted.duplicate else 1
    return new


def mount_forum(app: FastAPI, services: Services) -> None:
    """``/channels/forum/`` (push webhook, reply feeds, marking posted) over the database."""
    app.include_router(forum_router(ForumHotline(services).backend(), services.settings.forum))
