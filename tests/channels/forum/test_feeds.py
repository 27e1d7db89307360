"""The forum feed poller against a fake Discuz! forum on 127.0.0.1: messy feeds in, clean posts out, one cursor each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from channels.forum.feeds import FeedConfig, FeedCursor, FeedPoller, PollStatus
from channels.forum.text import discuz_thread_id, html_to_text
from tests.fakes.forum import FakeForum, Page, Thread, atom_feed, discuz_rss, running_forum

RSS_PATH = "/forum.php?mod=rss&fid=2"
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
NOISE = Thread(123, "小区夜间施工噪音扰民",
               "晚上十一点还在<b>施工</b>&nbsp;噪音很大<br/>请管一管！<script>x()</script>", "张三", T0)
LAMP = Thread(124, "路灯坏了三天", "<p>幸福路与人民路口的路灯不亮</p><p>晚上很危险</p>", "李四",
              T0 + timedelta(hours=1), link_form="static")
WATER = Thread(125, "停水没有通知", "<div>澄江街道停水一天，事先没有通知</div>", "王五",
               T0 + timedelta(hours=2), link_form="viewthread.php")


class Clock:
    def __init__(self) -> None:
        self.now = T0 + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def forum() -> Iterator[FakeForum]:
    with running_forum() as f:
        yield f


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(0.5)) as c:
        yield c


@pytest.fixture
def poller(client: httpx.Client, clock: Clock) -> FeedPoller:
    return FeedPoller(client, now=clock)


def board(forum: FakeForum, path: str = RSS_PATH, encoding: str | None = None) -> FeedConfig:
    return FeedConfig(board="wenzheng", url=forum.url(path), encoding=encoding)


def test_a_gbk_discuz_feed_without_guid_keys_each_post_on_host_and_thread_id(forum: FakeForum,
                                                                              poller: FeedPoller) -> None:
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [WATER, LAMP, NOISE])))
    result = poller.poll(board(forum), FeedCursor())
    assert result.status is PollStatus.OK, result.error
    assert [p.key for p in result.posts] == ["127.0.0.1/thread/123", "127.0.0.1/thread/124", "127.0.0.1/thread/125"]
    noise = result.posts[0]
    assert noise.title == "小区夜间施工噪音扰民"
    assert noise.text == "晚上十一点还在施工 噪音很大\n请管一管！"
    assert noise.author == "张三"
    assert noise.published == T0
    assert noise.thread_id == "123"
    assert noise.link.endswith("/forum.php?mod=viewthread&tid=123")
    assert result.posts[1].text == "幸福路与人民路口的路灯不亮\n晚上很危险"
    assert json.loads(json.dumps(noise.as_raw()))["key"] == "127.0.0.1/thread/123"


@pytest.mark.parametrize(
    ("declared", "content_type", "encoding"),
    [
        (None, "text/xml; charset=GBK", "gbk"),  # only the HTTP header says GBK
        ("utf-8", "text/xml; charset=utf-8", "gbk"),  # both say UTF-8, the bytes are GBK
        ("gbk", "text/xml", "utf-8"),  # the prolog says GBK, the bytes are UTF-8
        ("gb2312", "application/rss+xml", "gb18030"),  # GB2312 declared, a character outside it (镕) used
    ],
)
def test_the_text_survives_missing_or_wrong_encoding_declarations(
    forum: FakeForum, poller: FeedPoller, declared: str | None, content_type: str, encoding: str
) -> None:
    thread = Thread(200, "朱镕基路井盖缺失", "<p>朱镕基路口井盖丢了</p>", "赵六", T0)
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [thread], encoding=encoding, declare=declared),
                               content_type=content_type))
    result = poller.poll(board(forum), FeedCursor())
    assert result.status is PollStatus.OK, result.error
    assert [(p.title, p.text, p.author) for p in result.posts] == [("朱镕基路井盖缺失", "朱镕基路口井盖丢了", "赵六")]


def test_a_board_configured_with_its_real_encoding_is_read_in_it(forum: FakeForum, poller: FeedPoller) -> None:
    thread = Thread(201, "噪音", "<p>夜裡施工</p>", "張三", T0)
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [thread], board="網路問政", site="市民論壇",
                                          encoding="big5", declare="utf-8")))
    assert [p.text for p in poller.poll(board(forum, encoding="big5"), FeedCursor()).posts] == ["夜裡施工"]
    assert [p.text for p in poller.poll(board(forum), FeedCursor()).posts] != ["夜裡施工"]


def test_rss_disabled_is_a_clear_error_for_that_feed_and_backs_off(forum: FakeForum, poller: FeedPoller,
                                                                    clock: Clock) -> None:
    forum.serve(RSS_PATH, Page(b"RSS Disabled", content_type="text/html"))
    first = poller.poll(board(forum), FeedCursor())
    assert first.status is PollStatus.FAILED
    assert first.error is not None and "RSS Disabled" in first.error
    assert first.cursor.failures == 1
    assert first.cursor.retry_at == clock.now + timedelta(minutes=1)

    waiting = poller.poll(board(forum), first.cursor)
    assert waiting.status is PollStatus.WAITING
    assert len(forum.requests_to(RSS_PATH)) == 1

    clock.now += timedelta(minutes=1)
    second = poller.poll(board(forum), waiting.cursor)
    assert second.status is PollStatus.FAILED
    assert second.cursor.retry_at == clock.now + timedelta(minutes=2)


def test_back_off_doubles_up_to_its_cap_and_a_success_resets_it(forum: FakeForum, clock: Clock) -> None:
    poller = FeedPoller(backoff_base=timedelta(minutes=1), backoff_max=timedelta(minutes=10), now=clock)
    assert [poller.backoff(n) for n in (1, 2, 3, 4, 5, 40)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 10, 10)]
    forum.serve(RSS_PATH, Page(b"", status=503, content_type="text/plain"))
    cursor = FeedCursor()
    for _ in range(5):
        result = poller.poll(board(forum), cursor)
        assert result.status is PollStatus.FAILED and result.error == "HTTP 503 from the forum"
        cursor = result.cursor
        clock.now = cursor.retry_at or clock.now
    assert cursor.failures == 5
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE])))
    healed = poller.poll(board(forum), cursor)
    assert healed.status is PollStatus.OK
    assert (healed.cursor.failures, healed.cursor.retry_at, healed.cursor.last_error) == (0, None, None)
    poller.close()


def test_a_forum_asking_to_retry_later_is_not_polled_sooner(forum: FakeForum, poller: FeedPoller,
                                                            clock: Clock) -> None:
    forum.serve(RSS_PATH, Page(b"busy", status=429, content_type="text/plain", headers={"Retry-After": "900"}))
    result = poller.poll(board(forum), FeedCursor())
    assert result.cursor.retry_at == clock.now + timedelta(seconds=900)


def test_an_empty_channel_while_the_forum_rebuilds_its_cache_leaves_the_cursor_as_it_was(
    forum: FakeForum, poller: FeedPoller
) -> None:
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE, LAMP]), etag='"v1"'))
    cursor = poller.poll(board(forum), FeedCursor()).cursor
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), []), etag='"rebuilding"'))
    empty = poller.poll(board(forum), cursor)
    assert empty.status is PollStatus.EMPTY
    assert empty.posts == ()
    assert empty.cursor == cursor
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE, LAMP, WATER]), etag='"v2"'))
    after = poller.poll(board(forum), empty.cursor)
    assert [p.thread_id for p in after.posts] == ["125"]


def test_an_unchanged_feed_answers_304_to_our_etag_and_yields_nothing(forum: FakeForum, poller: FeedPoller) -> None:
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE]), etag='"abc"'))
    first = poller.poll(board(forum), FeedCursor())
    assert first.cursor.etag == '"abc"'
    second = poller.poll(board(forum), first.cursor)
    assert second.status is PollStatus.NOT_MODIFIED
    assert second.posts == ()
    assert second.cursor.seen == first.cursor.seen
    assert [r.headers.get("if-none-match") for r in forum.requests_to(RSS_PATH)] == [None, '"abc"']


def test_an_unchanged_feed_answers_304_to_our_last_modified(forum: FakeForum, poller: FeedPoller) -> None:
    stamp = "Mon, 03 Mar 2025 10:00:00 GMT"
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE]), last_modified=stamp))
    first = poller.poll(board(forum), FeedCursor())
    second = poller.poll(board(forum), first.cursor)
    assert second.status is PollStatus.NOT_MODIFIED
    assert forum.requests_to(RSS_PATH)[1].headers.get("if-modified-since") == stamp


def test_posts_already_seen_are_not_returned_again(forum: FakeForum, poller: FeedPoller) -> None:
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [LAMP, NOISE])))
    first = poller.poll(board(forum), FeedCursor())
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [WATER, LAMP, NOISE])))
    second = poller.poll(board(forum), first.cursor)
    assert [p.thread_id for p in second.posts] == ["125"]
    assert second.cursor.seen[:3] == ["127.0.0.1/thread/125", "127.0.0.1/thread/124", "127.0.0.1/thread/123"]
    third = poller.poll(board(forum), second.cursor)
    assert third.status is PollStatus.OK and third.posts == ()


def test_a_long_known_thread_reappearing_is_not_a_new_post(forum: FakeForum, poller: FeedPoller) -> None:
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [WATER])))
    cursor = poller.poll(board(forum), FeedCursor()).cursor
    ancient = Thread(99, "旧帖", "<p>很久以前的帖子</p>", "老王", T0 - timedelta(days=30))
    recent = Thread(126, "新帖", "<p>刚发的帖子</p>", "小王", T0 + timedelta(hours=3))
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [recent, WATER, ancient])))
    assert [p.thread_id for p in poller.poll(board(forum), cursor).posts] == ["126"]


def test_one_broken_feed_never_stops_the_others(forum: FakeForum, poller: FeedPoller) -> None:
    forum.serve("/broken", Page(b"<html>Internal error</html>", status=500, content_type="text/html"))
    forum.serve("/hangs-up", Page(b"", hang_up=True))
    forum.serve("/slow", Page(discuz_rss(forum.url(""), [NOISE]), delay_seconds=1.5))
    forum.serve("/not-xml", Page(b"<html><body>\xb9\xfd\xc6\xda</body></html>", content_type="text/html"))
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE, LAMP])))
    feeds = [board(forum, p) for p in ("/broken", "/hangs-up", "/slow", "/missing", "/not-xml", RSS_PATH)]
    results = poller.poll_all([(f, FeedCursor()) for f in feeds])
    statuses = {r.feed.url.removeprefix(forum.url("")): (r.status, r.error) for r in results}
    assert statuses[RSS_PATH] == (PollStatus.OK, None)
    assert [p.thread_id for p in results[-1].posts] == ["123", "124"]
    assert statuses["/broken"] == (PollStatus.FAILED, "HTTP 500 from the forum")
    assert statuses["/missing"] == (PollStatus.FAILED, "HTTP 404 from the forum")
    for path in ("/hangs-up", "/slow", "/not-xml"):
        status, error = statuses[path]
        assert status is PollStatus.FAILED and error, path
    assert "Timeout" in (statuses["/slow"][1] or "")
    assert all(r.cursor.failures == 1 for r in results if r.status is PollStatus.FAILED)


def test_a_feed_declaring_xml_entities_is_refused(forum: FakeForum, poller: FeedPoller) -> None:
    laughs = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "哈哈哈哈哈哈哈哈">'
              + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi", strict=True))
              + ']><rss version="2.0"><channel><title>x</title><item><title>&i;</title>'
              "<link>http://x/thread-1-1-1.html</link></item></channel></rss>")
    forum.serve(RSS_PATH, Page(laughs.encode()))
    result = poller.poll(board(forum), FeedCursor())
    assert result.status is PollStatus.FAILED
    assert result.error == "the feed declares XML entities; refused"


def test_an_oversized_feed_is_refused(forum: FakeForum, clock: Clock) -> None:
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE] * 50)))
    with FeedPoller(max_bytes=2048, now=clock) as poller:
        result = poller.poll(board(forum), FeedCursor())
    assert (result.status, result.error) == (PollStatus.FAILED, "the feed is larger than 2048 bytes")


def test_an_atom_feed_with_ids_keys_on_the_id_and_reads_the_html_content(forum: FakeForum,
                                                                          poller: FeedPoller) -> None:
    forum.serve("/atom", Page(atom_feed([("urn:post:7", "垃圾清运不及时", "http://forum.example/p/7", T0)]),
                              content_type="application/atom+xml"))
    result = poller.poll(board(forum, "/atom"), FeedCursor())
    assert [(p.key, p.title, p.text, p.author, p.published) for p in result.posts] == [
        ("guid:urn:post:7", "垃圾清运不及时", "垃圾清运不及时，请尽快处理。", "李四", T0)]


def test_the_cursor_survives_a_round_trip_through_json(forum: FakeForum, poller: FeedPoller) -> None:
    forum.serve(RSS_PATH, Page(discuz_rss(forum.url(""), [NOISE, LAMP]), etag='"e"', last_modified="yesterday"))
    cursor = poller.poll(board(forum), FeedCursor()).cursor
    assert FeedCursor.from_json(json.loads(json.dumps(cursor.to_json()))) == cursor
    failed = FeedCursor(failures=3, retry_at=T0, last_error="HTTP 500 from the forum")
    assert FeedCursor.from_json(json.loads(json.dumps(failed.to_json()))) == failed


@pytest.mark.parametrize(
    ("link", "tid"),
    [
        ("http://bbs.example.cn/thread-123-1-1.html", "123"),
        ("http://bbs.example.cn/bbs/thread-123-2-5.html", "123"),
        ("http://bbs.example.cn/viewthread.php?tid=123&extra=page%3D1", "123"),
        ("http://bbs.example.cn/forum.php?mod=viewthread&tid=123", "123"),
        ("http://bbs.example.cn/forum.php?tid=123&mod=viewthread&page=2", "123"),
        ("http://bbs.example.cn/archiver/tid-123.html", "123"),
        ("http://bbs.example.cn/forum.php?mod=forumdisplay&fid=2", None),
        ("http://bbs.example.cn/forum.php?mod=viewthread&tid=abc", None),
        ("http://news.example.cn/article?tid=123", None),
    ],
)
def test_discuz_thread_links_in_every_form_name_their_thread(link: str, tid: str | None) -> None:
    assert discuz_thread_id(link) == tid


def test_html_becomes_plain_text_one_line_per_block() -> None:
    html = "<div>第一行&amp;<br>第二行</div><style>p{}</style><p>  第三行　 </p><p></p>"
    assert html_to_text(html) == "第一行&\n第二行\n第三行"
