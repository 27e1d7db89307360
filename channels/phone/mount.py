"""The phone channel in the running system, for the entry points (``hotline.app``, ``hotline.worker``):

- ``mount_phone``: the Twilio webhooks (``/channels/twilio/voice``, its IVR steps, ``/channels/twilio/status`` …)
  with the real ``accept`` and ``ticket_status``, and the reply tracking that queues the reply SMS and the survey
  call in the reply's transaction. Nothing is mounted while ``HOTLINE_PHONE_ENABLED`` is off.
- ``phone_handlers`` / ``phone_senders`` / ``phone_fetchers``: the worker's handler of stored steps, the outbox
  sender and the fetcher of voicemail recordings into the attachment store.
"""

from __future__ import annotations

from fastapi import FastAPI

from channels.phone.handler import make_handler
from channels.phone.intake import accept, ticket_status_for
from channels.phone.outbound import make_sender, track_replies
from channels.phone.recordings import make_fetcher as make_recording_fetcher
from channels.phone.routes import phone_router
from hotline import attachments, inbound, outbox
from hotline.api.deps import get_session
from hotline.services import Services

CHANNEL = "phone"


def mount_phone(app: FastAPI, services: Services) -> None:
    settings = services.settings.phone
    if not settings.phone_enabled:
        return
    track_replies(services.sessions, settings)
    app.include_router(phone_router(settings, accept=accept, session=get_session,
                                    ticket_status=ticket_status_for(settings.city_timezone),
                                    throttle=services.rate_limiter.webhook))


def phone_handlers(services: Services) -> dict[str, inbound.Handler]:
    settings = services.settings.phone
    return {CHANNEL: make_handler(settings)} if settings.phone_enabled else {}


def phone_senders(services: Services) -> dict[str, outbox.Sender]:
    settings = services.settings.phone
    return {CHANNEL: make_sender(settings)} if settings.phone_enabled else {}


def phone_fetchers(services: Services) -> dict[str, attachments.Fetcher]:
    settings = services.settings.phone
    return {CHANNEL: make_recording_fetcher(settings)} if settings.phone_enabled else {}
