"""Twilio's REST API through the real ``twilio.rest.Client``: survey calls, the emergency line of a three-party
call, SMS notices.

``RebasedHttpClient`` keeps the library's own request building (paths, form encoding, auth, headers) and only
moves Twilio's host to ``HOTLINE_TWILIO_API_BASE`` (the local fake in the demo and the tests). It also adds
Twilio's idempotency header, ``I-Twilio-Idempotency-Token``: the generated resource methods (``calls.create`` …)
take no headers, so the token travels in a context variable set by ``idempotency()`` around the call. The outbox
passes its message's idempotency key, so a retried send after a lost response is not a second call or SMS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.phone.settings import TWILIO_API_BASE, PhoneSettings
from channels.phone.twiml import Ivr, Paths

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
_idempotency_token: ContextVar[str | None] = ContextVar("twilio_idempotency_token", default=None)


@contextmanager
def idempotency(token: str) -> Iterator[None]:
    """Every Twilio request made inside the block carries ``token`` as its idempotency token."""
    if not token:
        raise ValueError("an idempotency token may not be empty")
    reset = _idempotency_token.set(token)
    try:
        yield
    finally:
        _idempotency_token.reset(reset)


class RebasedHttpClient(TwilioHttpClient):
    """The library's HTTP client, sending to ``api_base`` instead of ``*.twilio.com`` and adding the idempotency
    token of the current ``idempotency()`` block."""

    def __init__(self, api_base: str = TWILIO_API_BASE, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(api_base.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{api_base!r} is not an http(s) base URL")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return urlunsplit((self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        token = _idempotency_token.get()
        if token is not None:
            headers = {**(headers or {}), IDEMPOTENCY_HEADER: token}
        response: Response = super().request(
            method, self.rebase(url), params=params, data=data, headers=headers, auth=auth, timeout=timeout,
            allow_redirects=allow_redirects,
        )
        return response


def make_client(settings: PhoneSettings, *, timeout: float = 10.0) -> Client:
    """The REST client for the configured account: an API key and secret if set, else the auth token."""
    http_client = RebasedHttpClient(settings.api_base, timeout=timeout)
    if settings.twilio_api_key:
        return Client(
            settings.twilio_api_key, settings.twilio_api_secret.get_secret_value(),
            account_sid=settings.twilio_account_sid, http_client=http_client,
        )
    return Client(settings.twilio_account_sid, settings.auth_token, http_client=http_client)


def retryable(error: Exception) -> bool:
    """Should the outbox try this send again later? Twilio's 429 and 5xx and lost connections: yes; a refused
    request (bad number, unknown conference …): no, trying again cannot help."""
    if isinstance(error, TwilioRestException):
        return error.status == 429 or error.status >= 500
    return isinstance(error, OSError) or type(error).__module__.startswith(("requests", "urllib3"))


@dataclass(frozen=True)
class PhoneRest:
    """What the worker asks of Twilio, one method per outbound action, each with the outbox's idempotency key."""

    client: Client
    settings: PhoneSettings

    @property
    def _ivr(self) -> Ivr:
        return Ivr.from_settings(self.settings)

    def place_survey_call(self, to: str, survey: str, number: str, *, key: str) -> str:
        """Call the citizen for the automated 回访; the questions come from ``Paths.SURVEY``. Returns the CallSid."""
        ivr = self._ivr
        with idempotency(key):
            call: Any = self.client.calls.create(
                to=to, from_=self.settings.caller_id, url=ivr.survey_url(survey, number), method="POST",
                status_callback=ivr.url(Paths.STATUS, survey=survey), status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"], timeout=30,
            )
        return str(call.sid)

    def add_emergency_line(self, conference: str, line: str, *, key: str) -> str:
        """Dial the emergency line into the caller's conference (three-party call). Returns the line's CallSid."""
        ivr = self._ivr
        with idempotency(key):
            participant: Any = self.client.conferences(conference).participants.create(
                from_=self.settings.caller_id, to=self.settings.emergency_number(line), early_media=True,
                end_conference_on_exit=False, beep="false", label=f"emergency-{line}",
                status_callback=ivr.url(Paths.CONFERENCE), status_callback_method="POST",
                status_callback_event=["ringing", "answered", "completed"],
            )
        return str(participant.call_sid)

    def move_to_conference(self, call_sid: str, line: str, room: str, *, key: str) -> None:
        """Redirect a live call (the caller's or the agent's leg) into the three-party conference ``room``."""
        with idempotency(key):
            self.client.calls(call_sid).update(
                url=self._ivr.url(Paths.JOIN_CONFERENCE, line=line, room=room), method="POST",
            )

    def send_sms(self, to: str, body: str, *, key: str) -> str:
        """Send an SMS notice from the hotline's number. Returns the MessageSid."""
        with idempotency(key):
            message: Any = self.client.messages.create(to=to, from_=self.settings.caller_id, body=body)
        return str(message.sid)
