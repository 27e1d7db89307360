"""The worker's forum pass: poll each configured board's feed every ``HOTLINE_FORUM_POLL_SECONDS`` and accept its
new posts through the one intake point.

- Each feed's ``FeedCursor`` lives in ``channel_cursors`` (row ``forum:<board>``) with the moment it is next due.
  A worker claims a due feed with one ``UPDATE … SET due_at = <next> WHERE due_at <= now``: of several workers,
  exactly one polls it; the others see it not due.
- The fetch happens outside any transaction (``channels.forum.feeds.FeedPoller``: timeouts, ETag/Last-Modified,
  Discuz! keys and encodings, back-off). Then, in one transaction, the new posts are accepted and the new cursor
  saved, so a crash in between only means the next poll finds the same posts again (the intake keeps one message
  per post).
- One broken feed never stops the others: the poller turns a feed's failure into that feed's back-off (the row is
  not due again before the cursor's ``retry_at``), and anything unexpected around one board (the database refusing
  its cursor) is logged and the pass goes on with the next board.
- The database is looked at most every ``check_seconds`` (the worker's loop runs several times a second).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from channels.forum.backend import accept_posts
from channels.forum.feeds import FeedConfig, FeedCursor, FeedPoller, PollStatus
from hotline.db import transaction
from hotline.models import ChannelCursor
from hotline.services import Services

log = logging.getLogger(__name__)
CHECK_SECONDS = 5.0


def cursor_name(board: str) -> str:
    return f"forum:{board}"


@dataclass
class FeedPassReport:
    polled: int = 0
    accepted: int = 0
    failed: int = 0

    def __bool__(self) -> bool:
        return bool(self.accepted)


def _claim(session: Session, name: str, now: datetime, next_due: datetime) -> FeedCursor | None:
    """The feed's cursor when it was due (and is now claimed until ``next_due``), else None."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(ChannelCursor).values(name=name, state={}, due_at=now, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["name"]))
    claimed = session.execute(
        update(ChannelCursor).where(ChannelCursor.name == name, ChannelCursor.due_at <= now)
        .values(due_at=next_due).returning(ChannelCursor.state)
    ).scalar_one_or_none()
    return None if claimed is None else FeedCursor.from_json(claimed)


class ForumFeeds:
    """Polls the boards' feeds for the worker; one instance per worker process (it keeps one HTTP client)."""

    def __init__(self, services: Services, *, client: httpx.Client | None = None,
                 check_seconds: float = CHECK_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._services = services
        self._client = client
        self._poller: FeedPoller | None = None
        self._check_seconds = check_seconds
        self._clock = clock
        self._next_check = 0.0

    def close(self) -> None:
        if self._poller is not None:
            self._poller.close()
            self._poller = None

    def poll_if_due(self) -> FeedPassReport:
        """The worker's call on every pass: a real pass at most every ``check_seconds``."""
        if self._clock() < self._next_check:
            return FeedPassReport()
        self._next_check = self._clock() + self._check_seconds
        return self.poll_once()

    def poll_once(self, now: datetime | None = None) -> FeedPassReport:
        report = FeedPassReport()
        settings = self._services.settings.forum
        for feed in settings.feeds():
            try:
                self._poll_board(feed, now or datetime.now(UTC), timedelta(seconds=settings.poll_seconds), report)
            except Exception:  # one broken feed never stops the others
                report.failed += 1
                log.exception("forum board %s: the feed pass failed; the next board goes on", feed.board)
        if report.polled:
            log.info("forum feeds: %s", report)
        return report

    def _poll_board(self, feed: FeedConfig, now: datetime, interval: timedelta, report: FeedPassReport) -> None:
        name = cursor_name(feed.board)
        with transaction(self._services.sessions) as session:
            cursor = _claim(session, name, now, now + interval)
        if cursor is None:
            return
        if self._poller is None:
            self._poller = FeedPoller(self._client)
        result = self._poller.poll(feed, cursor)
        report.polled += 1
        if result.status == PollStatus.FAILED:
            report.failed += 1
        due = now + interval
        if result.cursor.retry_at is not None and result.cursor.retry_at > due:
            due = result.cursor.retry_at
        with transaction(self._services.sessions) as session:
            report.accepted += accept_posts(session, result.posts, self._services.settings.max_text_chars)
            session.execute(update(ChannelCursor).where(ChannelCursor.name == name)
                            .values(state=result.cursor.to_json(), due_at=due, updated_at=now))
