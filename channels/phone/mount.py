"""The phone channel in the running system, for the entry points (``hotline.app``, ``hotline.worker``):

- ``mount_phone``: the Twilio webhooks (``/channels/twilio/voice``, its IVR steps, ``/channels/twilio/status`` …)
  with the real ``accept`` and ``ticket_status``, and the reply tracking that queues the reply SMS and the survey
  call in the reply's transaction. Nothing is mounted while ``HOTLINE_PHONE_ENABLED`` is off.
- ``phone_handlers`` / ``phone_senders`` / ``phone_fetchers``: the worker's handler of stored steps, the outbox
  sender and the fetcher of voicemail recordings into the attachment store.
- ``PhoneProbe``: the admin desk's channels tab (the URLs to configure on the Twilio number, a simulated call).
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from channels.phone import queue
from channels.phone import settings as phone_settings
from channels.phone.desk import desk_router
from channels.phone.handler import make_handler
from channels.phone.intake import accept, ticket_status_for
from channels.phone.numbers import e164
from channels.phone.outbound import make_sender, track_replies
from channels.phone.recordings import make_fetcher as make_recording_fetcher
from channels.phone.routes import phone_router
from channels.phone.settings import PhoneSettings
from channels.phone.simulate import CallFailed, SimulatedCall
from channels.phone.twiml import Paths
from hotline import attachments, inbound, outbox
from hotline.api.deps import get_session
from hotline.channel_probes import Address, ChannelStatus, ProbeRequest, ProbeResult, setting
from hotline.services import Services

CHANNEL = "phone"


def mount_phone(app: FastAPI, services: Services) -> None:
    settings = services.settings.phone
    if not settings.phone_enabled:
        return
    track_replies(services.sessions, settings)
    app.include_router(phone_router(settings, accept=accept, session=get_session,
                                    ticket_status=ticket_status_for(settings.city_timezone),
                                    throttle=services.rate_limiter.webhook,
                                    queued=queue.record_waiting, left_queue=queue.record_left))
    app.include_router(desk_router(settings))


def phone_handlers(services: Services) -> dict[str, inbound.Handler]:
    settings = services.settings.phone
    return {CHANNEL: make_handler(settings)} if settings.phone_enabled else {}


def phone_senders(services: Services) -> dict[str, outbox.Sender]:
    settings = services.settings.phone
    return {CHANNEL: make_sender(settings)} if settings.phone_enabled else {}


def phone_fetchers(services: Services) -> dict[str, attachments.Fetcher]:
    settings = services.settings.phone
    return {CHANNEL: make_recording_fetcher(settings)} if settings.phone_enabled else {}


class PhoneProbe:
    """The channels tab's view of the phone channel (``hotline.channel_probes``): the Voice URL and status callback
    to enter on the Twilio number (HOTLINE_PUBLIC_BASE_URL plus the path, which is what Twilio signs), the
    settings' state, and a test call signed as Twilio signs it (``hotline phone simulate``): menu key 1, the
    admin's words as the transcript, then the call's completed status."""

    channel = CHANNEL
    label = "电话（Twilio）"
    DEMO_CALLER = "+8613800000000"

    def __init__(self, settings: PhoneSettings) -> None:
        self.settings = settings

    def status(self, public_base_url: str) -> ChannelStatus:
        s = self.settings
        base = s.public_base_url or public_base_url
        return ChannelStatus(
            enabled=s.phone_enabled,
            addresses=(Address("语音来电地址（A call comes in → Webhook，HTTP POST）", base.rstrip("/") + Paths.VOICE),
                       Address("通话状态回调（Call status changes）", base.rstrip("/") + Paths.STATUS)),
            settings=(setting("HOTLINE_TWILIO_ACCOUNT_SID", s.twilio_account_sid, phone_settings.DEMO_ACCOUNT_SID,
                              secret=False),
                      setting("HOTLINE_TWILIO_AUTH_TOKEN", s.auth_token, phone_settings.DEMO_AUTH_TOKEN),
                      setting("HOTLINE_TWILIO_API_KEY", s.twilio_api_key, secret=False),
                      setting("HOTLINE_PUBLIC_BASE_URL", s.public_base_url, phone_settings.DEMO_PUBLIC_BASE_URL,
                              secret=False),
                      setting("HOTLINE_PHONE_NUMBERS", "、".join(s.phone_numbers),
                              "、".join(phone_settings.DEMO_PHONE_NUMBERS), secret=False),
                      setting("HOTLINE_EMERGENCY_NUMBERS", "、".join(f"{k}→{v}" for k, v in
                                                                     sorted(s.emergency_numbers.items())),
                              secret=False)),
            note="" if s.phone_enabled else "HOTLINE_PHONE_ENABLED 未开启：电话渠道未接入",
        )

    def test(self, server_url: str, request: ProbeRequest) -> ProbeResult:
        if not self.settings.phone_enabled:
            return ProbeResult(False, None, error="电话渠道未开通（HOTLINE_PHONE_ENABLED）")
        caller = e164(request.sender or self.DEMO_CALLER)
        if caller is None:
            return ProbeResult(False, None, error=f"“{request.sender}”不是电话号码，例如 13812345678")
        steps: list[str] = []
        with httpx.Client(base_url=server_url, timeout=15.0) as http:
            call = SimulatedCall(self.settings, caller, http, say_line=steps.append)
            try:
                call.run("1", request.text, hang_up_in_queue=False)
            except (CallFailed, httpx.HTTPError) as exc:
                return ProbeResult(False, None, error=f"电话渠道没有接受测试来电：{exc}", steps=steps)
        spoken = [line.strip(" «»") for line in steps if line.startswith("  «")]
        return ProbeResult(True, 200, reply=" / ".join(spoken), external_id=call.call_sid, steps=steps)
