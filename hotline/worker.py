"""``hotline worker``: the background process (an entry point). It turns stored channel messages into tickets
(``hotline.inbound``) as they arrive, sends the outbox (``hotline.outbox``) through the channels' senders, fetches
the citizens' files into the attachment store (``hotline.attachments``) through the channels' fetchers, and runs
the deadline sweeps of ``hotline.sweep``.

``run_forever`` survives a failed pass (database down, deadlock, a bug in one pass): it logs the error and waits
``backoff_seconds`` — the interval doubled per consecutive failure, at most ``MAX_BACKOFF_SECONDS`` — then tries
again; the first success returns to the normal interval. ``--once`` still fails loudly. In the embedded mode
(``make run``, SQLite) ``run_embedded`` does the same inside the server process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from channels.forum.poll import ForumFeeds
from channels.open311.backend import open311_handler
from channels.phone.mount import phone_fetchers, phone_handlers, phone_senders
from hotline import attachments, inbound, outbox
from hotline.services import Services, build_services
from hotline.settings import Settings
from hotline.sweep import sweep_once
from wechat_bot import web as wechat

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 300.0
IDLE_POLL_SECONDS = 0.2  # how soon a stored message is picked up when the worker was idle


def channel_senders(services: Services) -> dict[str, outbox.Sender]:
    """The outbox sender of every enabled channel (each channel package provides one); channels without one keep
    their rows pending until they get one."""
    senders: dict[str, outbox.Sender] = {}
    senders.update(phone_senders(services))
    if (wechat_sender := wechat.sender(services)) is not None:
        senders["wechat"] = wechat_sender
    return senders


def channel_fetchers(services: Services) -> dict[str, attachments.Fetcher]:
    """The attachment fetcher of every enabled channel that downloads its citizens' files."""
    fetchers: dict[str, attachments.Fetcher] = dict(phone_fetchers(services))
    if (wechat_fetcher := wechat.fetcher(services)) is not None:
        fetchers["wechat"] = wechat_fetcher
    return fetchers


def fetch_attachments_once(services: Services, fetchers: dict[str, attachments.Fetcher]) -> attachments.FetchReport:
    report = attachments.fetch_pending(services.sessions, fetchers, limits=services.settings.attachment_max_bytes)
    if report:
        log.info("attachments: %s", report)
    return report


def channel_handlers(services: Services) -> dict[str, inbound.Handler]:
    """Channels whose stored messages need more than a new ticket each (joining an open ticket, a call's steps)."""
    handlers: dict[str, inbound.Handler] = {"open311": open311_handler}
    handlers.update(phone_handlers(services))
    handlers["wechat"] = wechat.handler(services)
    return handlers


def send_outbox_once(services: Services, senders: dict[str, outbox.Sender]) -> outbox.SendReport:
    report = outbox.send_pending(services.sessions, senders)
    if report:
        log.info("outbox: %s", report)
    return report


def process_inbound_once(services: Services) -> inbound.ProcessReport:
    """One pass over the stored channel messages: each becomes a ticket (or is retried, or parked as failed)."""
    settings = services.settings
    report = inbound.process_pending(services.sessions, services.suggester, services.timing,
                                     auto_dispatch=settings.auto_dispatch, max_text_chars=settings.max_text_chars,
                                     handlers=channel_handlers(services))
    if report:
        log.info("inbound messages: %s", report)
    return report


async def run_embedded(services: Services) -> None:
    """The worker inside the server process (embedded mode): stored messages at once, sweeps every interval."""
    interval = services.settings.sweep_interval_seconds
    senders = channel_senders(services)
    fetchers = channel_fetchers(services)
    feeds = ForumFeeds(services)
    next_sweep = 0.0
    while True:
        busy = False
        try:
            await asyncio.to_thread(feeds.poll_if_due)
            busy = bool(await asyncio.to_thread(process_inbound_once, services))
            busy = bool(await asyncio.to_thread(send_outbox_once, services, senders)) or busy
            busy = bool(await asyncio.to_thread(fetch_attachments_once, services, fetchers)) or busy
        except Exception:
            log.exception("processing inbound messages or the outbox failed; retrying")
        if time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + interval
            try:
                sent = await asyncio.to_thread(sweep_once, services)
                if sent:
                    log.info("deadline sweep: %s", sent)
            except Exception:
                log.exception("deadline sweep failed; retrying in %.0f s", interval)
        await asyncio.sleep(0 if busy else IDLE_POLL_SECONDS)


def backoff_seconds(failures: int, interval: float) -> float:
    """Wait after ``failures`` consecutive failed passes: the interval doubled each time, at most 5 minutes."""
    base = max(1.0, interval)
    return min(MAX_BACKOFF_SECONDS, base * 2 ** min(failures - 1, 16))


def run_forever(
    settings: Settings,
    *,
    once: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    build: Callable[..., Services] = build_services,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """The worker process: stored channel messages as they come, deadline sweeps every ``sweep_interval_seconds``;
    an error is logged and retried with back-off."""
    services: Services | None = None
    senders: dict[str, outbox.Sender] = {}
    fetchers: dict[str, attachments.Fetcher] = {}
    feeds: ForumFeeds | None = None
    failures = 0
    next_sweep = 0.0
    while True:
        started = clock()
        busy = False
        try:
            if services is None:  # reading the calendar needs the database too
                services = build(settings)
                services.timing.escalate_after_days = settings.escalate_after_days
                senders = channel_senders(services)
                fetchers = channel_fetchers(services)
            feeds = feeds or ForumFeeds(services)
            feeds.poll_if_due()
            busy = bool(process_inbound_once(services))
            busy = bool(send_outbox_once(services, senders)) or busy
            busy = bool(fetch_attachments_once(services, fetchers)) or busy
            if once or started >= next_sweep:
                sent = sweep_once(services)
                next_sweep = started + settings.sweep_interval_seconds
                log.info("deadline sweep in %.2f s: %s", clock() - started, sent or "nothing due")
        except Exception:
            if once:
                raise
            failures += 1
            wait = backoff_seconds(failures, settings.sweep_interval_seconds)
            log.exception("worker pass failed (%d in a row); retrying in %.0f s", failures, wait)
            sleep(wait)
            continue
        if failures:
            log.info("the worker works again after %d failure(s)", failures)
            failures = 0
        if once:
            return
        if not busy:
            sleep(IDLE_POLL_SECONDS)
