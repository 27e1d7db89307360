"""What the phone channel sends, always through the outbox (``hotline.outbox``): retried, never doubled.

- The citizen's notices by SMS (accepted, answered, replied, closed, merged, transferred, re-dispatched): the core
  decides which and words them (``hotline.notices``, templates in ``hotline.notice_texts``, a city's own in
  ``HOTLINE_PHONE_SMS``); this channel only delivers them. The phone handler queues the acceptance with
  ``notices.notify`` in the transaction that makes the ticket; the workflow queues the rest.
- After a unit's reply (``track_replies``, in the reply's own transaction): the automated survey call (回访), due
  at the next moment inside the calling hours. Only tickets that came by phone get it; the other channels'
  citizens are called back by the agents. (Not a notice: a call that records an answer.)
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
from hotline import notices, outbox
from hotline.models import Citizen, OutboxMessage, Ticket, TicketEvent

CHANNEL = "phone"
SMS = "sms"  # rows queued before notices moved to the core (hotline.notices)
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
    """A unit replied to a phone ticket: the first survey call (inside calling hours)."""
    row = session.execute(
        select(Ticket, Citizen.phone)
        .join(Citizen, Citizen.id == Ticket.citizen_id)
        .where(Ticket.id == reply.ticket_id)
    ).first()
    if row is None or row[0].channel != CHANNEL or not row[1]:
        return
    ticket, phone = row[0], str(row[1])
    queue_survey_call(session, ticket, phone, SurveyRef(ticket.id, reply.id, 1), settings.next_calling_time(now),
                      now=now)


def track_replies(
    sessions: sessionmaker[Session], settings: PhoneSettings, clock: Callable[[], datetime] | None = None
) -> None:
    """Queue ``on_reply``'s survey call in the transaction of every reply made through these sessions."""
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
            if row.kind == SMS or row.kind in notices.KINDS:
                to = e164(row.recipient)
                if to is None or not takes_sms(to):
                    raise outbox.PermanentFailure(f"{row.recipient!r} takes no SMS")
                body = str(row.payload.get("text") or row.payload.get("body") or "")
                return twilio.send_sms(to, body, key=row.idempotency_key)
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
