"""What a citizen may do without an account: file a request through the one intake point (``hotline.inbound``,
channel ``web``) and follow it by its number plus the last four digits of the phone it was filed with.

- The challenge against bots is an arithmetic question the server signs (HMAC with the secret key over the expiry,
  a nonce and the answer), so the server keeps nothing per question; each question is good for one submission
  (``RateLimiter.first_use`` on its nonce) and ``CHALLENGE_TTL`` seconds.
- A submission is answered with a receipt: the stored message's id signed the same way, so nobody can walk the ids
  of other people's messages. The receipt tells only whether the ticket exists yet and its number.
- Following a ticket answers exactly four things: the status in the citizen's words, the unit handling it (never
  for a confidential ticket), the reply deadline and the public reply once there is one. A wrong number, a wrong
  last four digits and a ticket filed without a phone give the same answer (``None`` here, one 404 body in the
  API) after the same single query, so the answer tells nothing about which part was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.labels import PUBLIC_STATUS_LABELS
from hotline.models import Citizen, InboundMessage, Status, Ticket, Unit

CHALLENGE_TTL = 600
#: the ticket states in which the unit's (or the agent's) reply is the public answer to the citizen
REPLIED_STATES = frozenset({Status.answered, Status.replied, Status.callback, Status.closed})
_NUMBER = re.compile(r"^[0-9A-Za-z\-]{4,20}$")
_LAST4 = re.compile(r"^[0-9]{4}$")


def _sign(secret: str, *parts: object) -> str:
    message = "|".join(str(p) for p in parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Challenge:
    question: str
    token: str


def new_challenge(secret: str, now: float | None = None) -> Challenge:
    """A sum of two small numbers, asked in Chinese; the token carries its expiry, nonce and signature."""
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    expires = int((time.time() if now is None else now) + CHALLENGE_TTL)
    nonce = secrets.token_hex(8)
    token = f"{expires}.{nonce}.{_sign(secret, 'challenge', expires, nonce, a + b)}"
    return Challenge(question=f"{a} 加 {b} 等于几？", token=token)


def check_challenge(secret: str, token: str, answer: str, now: float | None = None) -> str | None:
    """The nonce of a correctly answered, unexpired challenge, or None (the caller makes sure it is used once)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not answer.strip().isdigit():
        return None
    expires, nonce, signature = parts
    if int(expires) < (time.time() if now is None else now):
        return None
    expected = _sign(secret, "challenge", expires, nonce, int(answer.strip()))
    return nonce if hmac.compare_digest(expected, signature) else None


def receipt_for(secret: str, inbound_id: int) -> str:
    return f"{inbound_id}.{_sign(secret, 'receipt', inbound_id)[:32]}"


def inbound_of(secret: str, receipt: str) -> int | None:
    head, _, signature = receipt.partition(".")
    if not head.isdigit() or len(head) > 12:
        return None
    expected = _sign(secret, "receipt", int(head))[:32]
    return int(head) if hmac.compare_digest(expected, signature) else None


@dataclass(frozen=True)
class ReceiptState:
    state: str  # processing | done | failed
    number: str | None


def receipt_state(session: Session, inbound_id: int) -> ReceiptState | None:
    row = session.execute(select(InboundMessage.state, Ticket.number)
                          .outerjoin(Ticket, Ticket.id == InboundMessage.ticket_id)
                          .where(InboundMessage.id == inbound_id)).first()
    if row is None:
        return None
    state, number = row
    if number is not None:
        return ReceiptState("done", number)
    return ReceiptState("failed" if state == "failed" else "processing", None)


@dataclass(frozen=True)
class PublicTicket:
    number: str
    status: str
    unit: str | None
    reply_due: datetime | None
    reply: str | None


def follow(session: Session, number: str, phone_last4: str) -> PublicTicket | None:
    """The citizen's view of one ticket, or None whenever the pair does not match (whatever the reason)."""
    wanted = number.strip() if _NUMBER.match(number.strip()) else ""
    row = session.execute(
        select(Ticket.number, Ticket.status, Ticket.confidential, Ticket.reply_due, Ticket.reply_text,
               Citizen.phone, Unit.name, Unit.short_name)
        .outerjoin(Citizen, Citizen.id == Ticket.citizen_id)
        .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
        .where(Ticket.number == wanted)
    ).first()
    given = phone_last4.strip() if _LAST4.match(phone_last4.strip()) else "invalid"
    phone = (row.phone or "") if row is not None else ""
    on_file = phone[-4:] if len(phone) >= 4 else "none"
    if row is None or not hmac.compare_digest(on_file.encode(), given.encode()):
        return None
    unit = None if row.confidential else (row.short_name or row.name)
    return PublicTicket(
        number=row.number,
        status=PUBLIC_STATUS_LABELS.get(row.status, "办理中"),
        unit=unit,
        reply_due=row.reply_due,
        reply=row.reply_text if row.status in REPLIED_STATES else None,
    )
