"""REST: the citizen's own page (no account): a challenge, a submission through the one intake point, the receipt
to poll until the ticket number exists, and following a ticket by number + the phone's last four digits.

Every endpoint here is rate-limited per client address (429 with ``Retry-After``); behind a reverse proxy run
uvicorn with ``--proxy-headers`` so the address is the citizen's, not the proxy's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from hotline import inbound, public
from hotline.api.deps import ServicesDep, SessionDep
from hotline.errors import Invalid, NotFound, TooMany
from hotline.fields import NoNul
from hotline.ratelimit import RateLimiter

router = APIRouter(prefix="/api/public", tags=["public"])

#: (requests, window in seconds) per client address
LIMITS: dict[str, tuple[int, int]] = {
    "challenge": (30, 600),
    "submit": (5, 600),
    "receipt": (120, 600),
    "follow": (10, 60),
}
NOT_FOUND = "未找到该工单，请核对工单编号和手机号后四位"


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.services.rate_limiter
    return limiter


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(request: Request, name: str) -> None:
    count, window = LIMITS[name]
    wait = _limiter(request).hit(name, _client(request), count, window)
    if wait is not None:
        raise TooMany("操作太频繁，请稍后再试", retry_after=wait)


class ChallengeOut(BaseModel):
    question: str
    token: str


@router.get("/challenge", response_model=ChallengeOut)
def challenge(request: Request, services: ServicesDep) -> ChallengeOut:
    """A question to answer with the submission (good for one submission, ten minutes)."""
    _limit(request, "challenge")
    c = public.new_challenge(services.settings.secret_key)
    return ChallengeOut(question=c.question, token=c.token)


Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), NoNul]


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=2000), NoNul]
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NoNul] | None = None
    name: Short | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), NoNul] | None = None
    confidential: bool = False
    challenge_token: Annotated[str, StringConstraints(max_length=200), NoNul]
    challenge_answer: Annotated[str, StringConstraints(max_length=10), NoNul]


class ReceiptOut(BaseModel):
    receipt: str
    state: str  # processing | done | failed
    number: str | None


@router.post("/requests", response_model=ReceiptOut, status_code=202)
def submit(body: RequestIn, request: Request, session: SessionDep, services: ServicesDep) -> ReceiptOut:
    """Store the request for the worker (channel ``web``) and answer with a receipt at once."""
    _limit(request, "submit")
    secret = services.settings.secret_key
    nonce = public.check_challenge(secret, body.challenge_token, body.challenge_answer)
    if nonce is None:
        raise Invalid("验证题答案不正确或已过期，请重新作答", field="challenge_answer")
    if not _limiter(request).first_use(f"challenge:{nonce}", public.CHALLENGE_TTL):
        raise Invalid("这道验证题已经用过，请换一题", field="challenge_answer")
    accepted = inbound.accept(session, inbound.Inbound(
        channel="web", external_id=f"public:{uuid.uuid4().hex}", text=body.text,
        citizen_name=body.name or None, citizen_phone=body.phone or None, place_text=body.location or None,
        confidential=body.confidential, raw={"source": "public page"},
    ), max_text_chars=services.settings.max_text_chars)
    session.commit()
    return ReceiptOut(receipt=public.receipt_for(secret, accepted.inbound_id), state="processing", number=None)


@router.get("/requests/{receipt}", response_model=ReceiptOut)
def receipt(receipt: str, request: Request, session: SessionDep, services: ServicesDep) -> ReceiptOut:
    """Whether the ticket exists yet, and its number (nothing else)."""
    _limit(request, "receipt")
    inbound_id = public.inbound_of(services.settings.secret_key, receipt[:64])
    state = public.receipt_state(session, inbound_id) if inbound_id is not None else None
    if state is None:
        raise NotFound("未找到这份提交记录")
    return ReceiptOut(receipt=receipt, state=state.state, number=state.number)


class PublicTicketOut(BaseModel):
    number: str
    status: str
    unit: str | None
    reply_due: datetime | None
    reply: str | None


@router.get("/tickets/{number}", response_model=PublicTicketOut,
            responses={404: {"description": "unknown number, or a last four that does not match: the same body"}})
def follow(number: str, request: Request, session: SessionDep, phone_last4: str = "") -> PublicTicketOut:
    """Status, unit (not for confidential tickets), deadline and public reply of a ticket, for the pair number +
    the last four digits of the phone it was filed with."""
    _limit(request, "follow")
    found = public.follow(session, number[:40], phone_last4[:10])
    if found is None:
        raise NotFound(NOT_FOUND)
    return PublicTicketOut(**vars(found))

