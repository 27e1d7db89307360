"""What the phone channel sends, always through the outbox (``hotline.outbox``): retried, never doubled.

- SMS on acceptance (``queue_acceptance_sms``), in the transaction that creates the phone ticket: its number and
  how to ask for its status, plus a short summary unless the ticket is confidential (``channels.phone.texts``).
- After a unit's reply (``track_replies``, in the reply's own transaction): the reply SMS and the automated survey
  call (回访), due at the next moment inside the calling hours. Only tickets that came by phone get them; the other
  channels' citizens are called back by the agents.
- The sender (``make_sender``) sends each row with ``channels.phone.rest`` and the row's key as Twilio's
  idempotency token, so a resend after a lost answer is not a second SMS or call. A survey call that would go out
  outside the calling hours (a retry that slid into the evening) is postponed to the next calling period. Twilio's
  refusals that no retry fixes (bad number …) park the row.

A survey call is one outbox row per try, keyed ``phone:survey:<ticket>:<round>:<try>``; the key travels with the
call as its survey reference and comes back with the answers and the call's status (``parse_survey``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException

from channels.phone.numbers import e164, takes_sms
from channels.phone.rest import PhoneRest, make_client, retryable
from channels.phone.settings import PhoneSettings
from channels.phone.texts import TicketNotice
from hotline import outbox
from hotline.models import Citizen, OutboxMessage, Ticket, TicketEvent, Unit

CHANNEL = "phone"
SMS = "sms"
SURVEY_CALL = "survey_call"
_REPLIES = "phone_replies"


@dataclass(frozen=True)
class SurveyRef:
    ticket_id: int
    round: int  # the reply event the survey is about
    attempt: int

    @property
    def key(self) -> str:
        return f"phone:survey:{self.ticket_id}:{self.round}:{self.attempt}"

    def next(self) -> SurveyRef:
        return SurveyRef(self.ticket_id, self.round, self.attempt + 1)


def parse_survey(ref: str) -> SurveyRef | None:
    parts = ref.split(":")
    if len(parts) != 5 or parts[:2] != ["phone", "survey"] or not all(p.isdigit() for p in parts[2:]):
        return None
    return SurveyRef(int(parts[2]), int(parts[3]), int(parts[4]))


def queue_sms(session: Session, *, key: str, ticket: Ticket, phone: str, body: str, now: datetime | None) -> bool:
    """Queue one SMS to ``phone`` (a landline gets none). True when queued."""
    to = e164(phone)
    if to is None or not takes_sms(to):
        return False
    outbox.enqueue(session, channel=CHANNEL, kind=SMS, key=key, payload={"body": body}, recipient=to,
                   ticket_id=ticket.id, now=now)
    return True


def queue_acceptance_sms(
    session: Session, settings: PhoneSettings, ticket: Ticket, phone: str, now: datetime | None = None
) -> bool:
    notice = TicketNotice(number=ticket.number, confidential=ticket.confidential, summary=ticket.text)
    return queue_sms(session, key=f"phone:sms:accepted:{ticket.id}", ticket=ticket, phone=phone,
                     body=settings.phone_sms.on_acceptance(notice), now=now)


def queue_survey_call(
    session: Session, ticket: Ticket, phone: str, ref: SurveyRef, due: datetime, now: datetime | None = None
) -> bool:
    to = e164(phone)
    if to is None:
        return False
    outbox.enqueue(session, channel=CHANNEL, kind=SURVEY_CALL, key=ref.key, recipient=to, ticket_id=ticket.id,
                   payload={"survey": ref.key, "number": ticket.number, "attempt": ref.attempt}, now=now, due=due)
    return True


def on_reply(session: Session, settings: PhoneSettings, reply: TicketEvent, now: datetime) -> None:
    """A unit replied to a phone ticket: the reply SMS and the first survey call (inside calling hours)."""
    row = session.execute(
        select(Ticket, Citizen.phone, Unit.name)
        .join(Citizen, Citizen.id == Ticket.citizen_id)
        .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
        .where(Ticket.id == reply.ticket_id)
    ).first()
    if row is None or row[0].channel != CHANNEL or not row[1]:
        return
    ticket, phone, unit = row[0], str(row[1]), row[2] or ""
    notice = TicketNotice(number=ticket.number, confidential=ticket.confidential, unit=unit,
                          reply=ticket.reply_text or "")
    queue_sms(session, key=f"phone:sms:replied:{reply.id}", ticket=ticket, phone=phone,
              body=settings.phone_sms.on_reply(notice), now=now)
    queue_survey_call(session, ticket, phone, SurveyRef(ticket.id, reply.id, 1), settings.next_calling_time(now),
                      now=now)


def track_replies(
    sessions: sessionmaker[Session], settings: PhoneSettings, clock: Callable[[], datetime] | None = None
) -> None:
    """Queue ``on_reply``'s messages in the transaction of every reply made through these sessions."""
    now = clock or (lambda: datetime.now(UTC))

    @event.listens_for(sessions, "after_flush")
    def _collect(session: Session, _context: Any) -> None:
        replies = [o for o in session.new if isinstance(o, TicketEvent) and o.type == "reply"]
        if replies:
            session.info.setdefault(_REPLIES, []).extend(replies)

    @event.listens_for(sessions, "before_commit")
    def _queue(session: Session) -> None:
        replies: list[TicketEvent] = session.info.pop(_REPLIES, [])
        for reply in replies:
            on_reply(session, settings, reply, reply.created_at or now())

    @event.listens_for(sessions, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_REPLIES, None)


def make_sender(
    settings: PhoneSettings, *, rest: PhoneRest | None = None, clock: Callable[[], datetime] | None = None
) -> outbox.Sender:
    """The phone channel's outbox sender (SMS and survey calls through Twilio's REST API)."""
    twilio = rest or PhoneRest(make_client(settings), settings)
    now = clock or (lambda: datetime.now(UTC))

    def send(row: OutboxMessage) -> str | None:
        try:
            if row.kind == SMS:
                return twilio.send_sms(row.recipient, str(row.payload["body"]), key=row.idempotency_key)
            if row.kind == SURVEY_CALL:
                moment = now()
                if not settings.may_call_at(moment):
                    raise outbox.Postpone(settings.next_calling_time(moment), "outside the survey calling hours")
                return twilio.place_survey_call(row.recipient, str(row.payload["survey"]),
                                                str(row.payload["number"]), key=row.idempotency_key)
        except TwilioRestException as error:
            if retryable(error):
                raise
            raise outbox.PermanentFailure(f"Twilio refused it ({error.status} {error.code}): {error.msg}") from error
        raise outbox.PermanentFailure(f"the phone channel sends no {row.kind!r}")

    return send
