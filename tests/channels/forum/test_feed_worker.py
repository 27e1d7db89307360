"""The worker polls the boards' feeds: a GBK Discuz! feed without guids, served by the fake forum, becomes tickets;
the cursor lives in the database; a broken board never stops the others."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import HttpUrl
from sqlalchemy import func, select, update

from channels.forum.poll import ForumFeeds, cursor_name
from channels.forum.settings import DEMO_FORUM_SECRET, Board, ForumSettings
from hotline.models import ChannelCursor, InboundMessage, Ticket
from hotline.services import Services
from hotline.settings import Settings
from hotline.worker import run_forever
from tests.fakes.forum import FakeForum, Page, Thread, discuz_rss, running_forum

FEED = "/forum.php?mod=rss&fid=2"
DISABLED = "/forum.php?mod=rss&fid=9"
POSTED = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
THREADS = [
    Thread(101, "建设路路灯不亮", "<p>建设路<b>三个路灯</b>一周没亮了</p>", "王五", POSTED),
    Thread(102, "澄江小区垃圾清运不及时", "<div>垃圾堆了三天没人收</div>", "赵六", POSTED + timedelta(minutes=5),
           link_form="static"),
]


@pytest.fixture
def forum() -> Iterator[FakeForum]:
    with running_forum() as fake:
        yield fake


@pytest.fixture
def settings(db_url: str, tmp_path: Path, forum: FakeForum) -> Settings:
    def board(path: str) -> Board:
        return Board(title="网络问政", site_url=HttpUrl(forum.url("/forum.php?mod=forumdisplay&fid=2")),
                     feed_url=HttpUrl(forum.url(path)), secrets=(DEMO_FORUM_SECRET,))

    boards = {"disabled": board(DISABLED), "wenzheng": board(FEED)}  # the broken board is polled first
    return Settings(demo=True, database_url=db_url, redis_url=None, model_dir=tmp_path / "no-model",
                    embedded_worker=False, forum=ForumSettings(demo=True, boards=boards, poll_seconds=60))


def worker_pass(services: Services) -> None:
    run_forever(services.settings, once=True, build=lambda _settings: services)


def forum_tickets(services: Services) -> list[Ticket]:
    with services.sessions() as s:
        return list(s.scalars(select(Ticket).where(Ticket.channel == "forum").order_by(Ticket.id)))


def make_due(services: Services) -> None:
    with services.sessions() as s:
        s.execute(update(ChannelCursor).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()


def test_a_gbk_discuz_feed_without_guids_becomes_tickets_in_a_worker_pass(
    services: Services, forum: FakeForum
) -> None:
    forum.serve(FEED, Page(discuz_rss(forum.url(""), THREADS), content_type="text/xml", etag='"v1"'))
    forum.serve(DISABLED, Page(b"RSS Disabled", content_type="text/plain"))
    worker_pass(services)
    tickets = forum_tickets(services)
    assert [t.title for t in tickets] == ["建设路路灯不亮", "澄江小区垃圾清运不及时"]
    assert tickets[0].text == "建设路三个路灯一周没亮了"
    with services.sessions() as s:
        keys = sorted(s.scalars(select(InboundMessage.external_id)))
        cursors = {c.name: c for c in s.scalars(select(ChannelCursor))}
    assert keys == ["127.0.0.1/thread/101", "127.0.0.1/thread/102"]  # host + tid: Discuz! has no guid
    assert cursors[cursor_name("wenzheng")].state["etag"] == '"v1"'
    broken = cursors[cursor_name("disabled")].state
    assert broken["failures"] == 1 and "RSS Disabled" in broken["last_error"]


def test_the_cursor_in_the_database_keeps_a_second_poll_from_resubmitting(
    services: Services, forum: FakeForum
) -> None:
    forum.serve(FEED, Page(discuz_rss(forum.url(""), THREADS[:1]), etag='"v1"'))
    worker_pass(services)
    worker_pass(services)  # not due yet: the feed is not fetched again
    assert len(forum.requests_to(FEED)) == 1
    make_due(services)
    ForumFeeds(services).poll_once()  # due: fetched with the stored ETag, answered 304
    assert forum.requests_to(FEED)[-1].headers.get("if-none-match") == '"v1"'
    forum.serve(FEED, Page(discuz_rss(forum.url(""), THREADS), etag='"v2"'))
    make_due(services)
    worker_pass(services)
    assert [t.title for t in forum_tickets(services)] == ["建设路路灯不亮", "澄江小区垃圾清运不及时"]
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 2


def test_a_feed_that_fails_backs_off_and_never_stops_the_other_board(
    services: Services, forum: FakeForum
) -> None:
    forum.serve(FEED, Page(discuz_rss(forum.url(""), THREADS[:1])))
    forum.serve(DISABLED, Page(b"<html>502 Bad Gateway</html>", status=502))
    report = ForumFeeds(services).poll_once()
    assert (report.polled, report.accepted, report.failed) == (2, 1, 1)
    with services.sessions() as s:
        broken = s.get(ChannelCursor, cursor_name("disabled"))
        assert broken is not None
        assert broken.state["retry_at"] is not None and broken.due_at > datetime.now(UTC)
