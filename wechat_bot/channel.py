"""The WeChat channel's part of the hotline's intake: what a push becomes, the worker's handling, status lookups.

- ``to_inbound``: a citizen's push (``messages.Inbound``) as the core's ``hotline.inbound.Inbound``. A photo or a
  location has no text of its own; its ticket says in words what came (``IMAGE_TEXT`` …), the desk shows the rest.
- ``WeChatHandler`` (registered in ``hotline.worker.channel_handlers``), in the worker's transaction per message:
  - **joining**: a citizen's messages that follow each other within ``JOIN_WINDOW`` (10 minutes, counted from
    the previous message of that ticket, by WeChat's own CreateTime) join the citizen's latest WeChat ticket while
    nobody has taken it up (status 受理 or 派单, not yet signed by a unit): the text, then a photo, then a
    location are one ticket. A joined message is a ``citizen_message`` event on that ticket with its attachment
    and place; a location also becomes the ticket's place, matched to the gazetteer. The citizen hears
    ``JOINED``. Messages of one citizen are handled one at a time (a PostgreSQL advisory lock on the openid).
  - **a direct answer**: a short question the knowledge base answers confidently (``knowledge_answer``) makes a
    ticket that is answered at once with the article (the workflow's ``answer`` action; the citizen receives it
    as ``ANSWERED`` through the outbox, seconds after the passive "received").
  - **voice** without WeChat's Recognition transcript: the audio is the attachment and the ticket waits for an
    agent (no auto-dispatch): nobody has read what it says.
  - otherwise a new ticket through ``intake.create_ticket``, and the citizen hears ``RECEIVED`` with its number.
- ``lookup_status``: the citizen's own WeChat tickets (by openid), in the words of ``texts.STATUS_WORDS``.

Photos and voice messages are fetched by the worker from WeChat's media API after the ticket is made (WeChat keeps
them three days) into the core's attachment store (``hotline.attachments``, fetcher ``wechat_bot.media``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hotline import inbound as core
from hotline import intake, notices, workflow
from hotline.auth import SYSTEM, channel_actor
from hotline.models import Citizen, InboundMessage, KnowledgeArticle, Status, Ticket
from nlp.signals import detect_kind_with_cue, detect_urgency
from wechat_bot import messages
from wechat_bot.texts import STATUS_WORDS, TicketStatus

CHANNEL = "wechat"
JOIN_WINDOW = timedelta(minutes=10)
JOINABLE = (Status.received, Status.dispatched)
IMAGE_TEXT = "（市民通过微信发来一张图片）"
VOICE_TEXT = "（市民通过微信发来一段语音，尚未转写，请收听附件）"
LOCATION_TEXT = "（市民通过微信发来位置）"
#: a knowledge article answers a message directly only when all of these hold
MAX_QUESTION_CHARS = 80
MIN_SCORE = 12.0  # BM25 of the best article (a short question matching an article's title scores 14-45)
MIN_LEAD = 1.8  # the best article's score over the second's: one article clearly answers it
_QUESTION = re.compile(r"怎么|怎样|如何|哪里|哪儿|什么|多少|多久|几天|能否|能不能|可不可以|是否|请问|咨询|吗|[？?]")
_RHETORICAL = re.compile(r"怎么(还|没|不|又|老|总|就|能这样)|凭什么|为什么")

#: (session, query, limit) -> [(article id, score)]: ``Services.knowledge_search``
KnowledgeSearch = Callable[[Session, str, int], list[tuple[int, float]]]


def to_inbound(record: messages.Inbound) -> core.Inbound:
    """The core's view of a citizen's push (channel "wechat", deduplicated on MsgId)."""
    kinds = {m.kind for m in record.media}
    words = record.text.strip()
    if not words:
        words = VOICE_TEXT if "audio" in kinds else IMAGE_TEXT if "image" in kinds else LOCATION_TEXT
    attachments = tuple(core.Attachment(kind=m.kind, url=m.url, media_id=m.media_id, content_type=m.format,
                                        fetch=bool(m.media_id))
                        for m in record.media)
    return core.Inbound(channel=CHANNEL, external_id=record.external_id, text=words,
                        wechat_openid=record.wechat_openid, place_text=record.place_text,
                        latitude=record.latitude, longitude=record.longitude, attachments=attachments,
                        received_at=record.received_at, raw=record.raw)


def accept(session: Session, record: messages.Inbound) -> core.Accepted:
    """The route's ``accept``: store the push durably (the route commits, then answers WeChat)."""
    return core.accept(session, to_inbound(record))


def lookup_status(session: Session, openid: str, number: str | None) -> Sequence[TicketStatus]:
    """The citizen's own tickets that came by WeChat (``number``: that one only), never anyone else's."""
    stmt = (select(Ticket).join(Citizen, Citizen.id == Ticket.citizen_id)
            .where(Citizen.wechat_openid == openid, Ticket.channel == CHANNEL)
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(20))
    if number is not None:
        stmt = stmt.where(Ticket.number == number)
    shown_reply = {Status.answered, Status.replied, Status.callback, Status.closed}
    return [TicketStatus(number=t.number, status=STATUS_WORDS.get(t.status, "办理中"), updated_at=t.updated_at,
                         summary=f"：{t.title[:20]}" if t.title and not t.confidential else "",
                         reply=(t.reply_text or "") if t.status in shown_reply else "")
            for t in session.scalars(stmt)]


@dataclass(frozen=True)
class Answer:
    article_id: int
    title: str
    body: str
    score: float


def knowledge_answer(session: Session, message: str, search: KnowledgeSearch) -> Answer | None:
    """The article that answers this message at once, or None: the message is a short question (not a complaint,
    report, plea for help or anything urgent) and one article matches it well and clearly better than the next."""
    words = unicodedata.normalize("NFKC", message).strip()
    if not words or len(words) > MAX_QUESTION_CHARS or not _QUESTION.search(words) or _RHETORICAL.search(words):
        return None
    kind, cue = detect_kind_with_cue("", words)
    if (cue is not None and kind != "consultation") or detect_urgency("", words).urgent:
        return None
    hits = search(session, words, 2)
    if not hits or hits[0][1] < MIN_SCORE or (len(hits) > 1 and hits[0][1] < MIN_LEAD * hits[1][1]):
        return None
    article = session.get(KnowledgeArticle, hits[0][0])
    if article is None or not article.active:
        return None
    return Answer(article.id, article.title, article.body, hits[0][1])


class WeChatHandler:
    """``hotline.inbound.Handler`` for the WeChat channel (see the module docstring)."""

    def __init__(self, knowledge_search: KnowledgeSearch, join_window: timedelta = JOIN_WINDOW) -> None:
        self._search = knowledge_search
        self.join_window = join_window

    def __call__(self, session: Session, row: InboundMessage, request: intake.IntakeRequest,
                 ctx: core.Context) -> Ticket:
        openid = request.citizen.wechat_openid if request.citizen else None
        if openid:
            _one_at_a_time(session, openid)
            joined = self._open_ticket(session, openid, row.received_at)
            if joined is not None:
                return self._join(session, joined, row, request, ctx)
        raw = row.payload.get("raw") or {}
        untranscribed = raw.get("MsgType") == "voice" and not raw.get("Recognition")
        answer = None if untranscribed or row.payload.get("attachments") else knowledge_answer(
            session, request.text, self._search)
        extra = {k: row.payload.get(k) for k in ("attachments", "coordinates") if row.payload.get(k)}
        if answer is not None:
            extra["knowledge_article_id"] = answer.article_id
        ticket = intake.create_ticket(
            session, request, channel_actor(CHANNEL), suggester=ctx.suggester, timing=ctx.timing, inbound=row,
            max_text_chars=ctx.max_text_chars, auto_dispatch=ctx.auto_dispatch and answer is None and not untranscribed,
            now=ctx.now, extra=extra)
        if answer is not None:
            workflow.perform(session, ticket.id, "answer", SYSTEM,
                             workflow.ActionInput(note=f"{answer.title}：{answer.body}"[:5000]), ctx.timing,
                             now=ctx.now)  # the notice (ANSWERED) is queued by the workflow
        else:
            notices.notify(session, ticket, notices.RECEIVED, cause=f"inbound{row.id}")
        return ticket

    def _open_ticket(self, session: Session, openid: str, at: datetime) -> Ticket | None:
        """The citizen's latest WeChat ticket nobody has taken up, if its last message is within the window."""
        ticket = session.scalar(
            select(Ticket).join(Citizen, Citizen.id == Ticket.citizen_id)
            .where(Citizen.wechat_openid == openid, Ticket.channel == CHANNEL, Ticket.status.in_(JOINABLE))
            .order_by(Ticket.id.desc()).limit(1))
        if ticket is None:
            return None
        last = session.scalar(select(func.max(InboundMessage.received_at)).where(InboundMessage.ticket_id == ticket.id))
        last = last or ticket.received_at
        return ticket if abs(at - last) <= self.join_window else None

    def _join(self, session: Session, ticket: Ticket, row: InboundMessage, request: intake.IntakeRequest,
              ctx: core.Context) -> Ticket:
        data: dict[str, object] = {"channel": CHANNEL, "external_id": row.external_id}
        data.update({k: row.payload[k] for k in ("attachments", "coordinates") if row.payload.get(k)})
        if request.location:
            data["place"] = request.location
            if ticket.status == Status.received:
                ticket.location = request.location
                now = ctx.now or row.received_at
                area_id = ctx.suggester.suggest(session, "", "", request.location, now).area_id
                if area_id is not None:
                    ticket.area_id = area_id
                    data["area_id"] = area_id
        row.ticket_id = ticket.id
        workflow.record_event(session, ticket, "citizen_message", channel_actor(CHANNEL), note=request.text,
                              data=data, now=ctx.now)
        notices.notify(session, ticket, notices.JOINED, cause=f"inbound{row.id}")
        return ticket


def _one_at_a_time(session: Session, openid: str) -> None:
    """Messages of one citizen are joined one after the other (SQLite serialises every writer anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"wechat:{openid}"})
