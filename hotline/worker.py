"""``hotline worker``: the background process (an entry point). It runs the deadline sweeps of ``hotline.sweep``.

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

from hotline.services import Services, build_services
from hotline.settings import Settings
from hotline.sweep import sweep_once

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 300.0


async def run_embedded(services: Services) -> None:
    """The sweep inside the server process (embedded mode)."""
    interval = services.settings.sweep_interval_seconds
    while True:
        try:
            sent = await asyncio.to_thread(sweep_once, services)
            if sent:
                log.info("deadline sweep: %s", sent)
        except Exception:
            log.exception("deadline sweep failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)


def backoff_seconds(failures: int, interval: float) -> float:
    """Wait after ``failures`` consecutive failed sweeps: the interval doubled each time, at most 5 minutes."""
    base = max(1.0, interval)
    return min(MAX_BACKOFF_SECONDS, base * 2 ** min(failures - 1, 16))


def run_forever(
    settings: Settings,
    *,
    once: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    build: Callable[..., Services] = build_services,
) -> None:
    """The worker process: sweep every ``sweep_interval_seconds``; an error is logged and retried with back-off."""
    services: Services | None = None
    failures = 0
    while True:
        started = time.monotonic()
        try:
            if services is None:  # reading the calendar needs the database too
                services = build(settings, load_model=False)
                services.timing.escalate_after_days = settings.escalate_after_days
            sent = sweep_once(services)
        except Exception:
            if once:
                raise
            failures += 1
            wait = backoff_seconds(failures, settings.sweep_interval_seconds)
            log.exception("deadline sweep failed (%d in a row); retrying in %.0f s", failures, wait)
            sleep(wait)
            continue
        if failures:
            log.info("deadline sweep works again after %d failure(s)", failures)
            failures = 0
        log.info("deadline sweep in %.2f s: %s", time.monotonic() - started, sent or "nothing due")
        if once:
            return
        sleep(max(1.0, settings.sweep_interval_seconds - (time.monotonic() - started)))
