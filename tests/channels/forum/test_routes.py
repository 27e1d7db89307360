"""The forum's HTTP side: signed pushes in (forged → 403), the reply feed out, replies marked as posted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from channels.forum.push import PushedPost, sign, signed_headers
from channels.forum.replies import OfficialReply, RepliesPosted
from channels.forum.routes import ForumBackend, forum_router
from channels.forum.settings import DEMO_FORUM_SECRET, Board, ForumSettings

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
SECRET = "wenzheng-secret-0123456789"
POST = json.dumps({"thread_id": "123", "title": "小区夜间施工噪音扰民", "body": "<p>晚上十一点还在施工</p>",
                   "author": "张三", "link": "http://bbs.example.cn/forum.php?mod=viewthread&tid=123",
                   "posted_at": "2025-03-03T09:58:00+08:00"}, ensure_ascii=False).encode()
REPLY = OfficialReply(7, "20250303-000123", "http://bbs.example.cn/forum.php?mod=viewthread&tid=123",
                      "小区夜间施工噪音扰民", "经核查，该工地已停止夜间施工。", "区城市管理局", NOW)


@dataclass
class Backend:
    accepted: list[tuple[str, PushedPost]] = field(default_factory=list)
    marked: list[tuple[str, RepliesPosted]] = field(default_factory=list)

    def accept(self, board: str, post: PushedPost) -> bool:
        duplicate = any(p.key == post.key for _, p in self.accepted)
        self.accepted.append((board, post))
        return duplicate

    def mark(self, board: str, marks: RepliesPosted) -> int:
        self.marked.append((board, marks))
        return len(marks.posted)


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def forum(backend: Backend) -> Iterator[TestClient]:
    settings = ForumSettings(demo=False, boards={"wenzheng": Board(
        title="网络问政", site_url="http://bbs.example.cn/forum.php?mod=forumdisplay&fid=2",
        secrets=(SECRET,))})
    app = FastAPI()
    app.include_router(forum_router(ForumBackend(accept=backend.accept, pending_replies=lambda board: [REPLY],
                                                 mark_posted=backend.mark, now=lambda: NOW), settings))
    with TestClient(app) as client:
        yield client


def headers(body: bytes, secret: str = SECRET, at: datetime = NOW) -> dict[str, str]:
    return {**signed_headers(secret, body, at), "Content-Type": "application/json"}


def test_a_signed_push_is_accepted_with_the_thread_key(forum: TestClient, backend: Backend) -> None:
    r = forum.post("/channels/forum/wenzheng", content=POST, headers=headers(POST))
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": True, "duplicate": False, "key": "bbs.example.cn/thread/123"}
    assert [(board, post.title) for board, post in backend.accepted] == [("wenzheng", "小区夜间施工噪音扰民")]


def test_the_same_push_three_times_reaches_the_intake_with_one_key(forum: TestClient, backend: Backend) -> None:
    answers = [forum.post("/channels/forum/wenzheng", content=POST, headers=headers(POST)).json()
               for _ in range(3)]
    assert [a["duplicate"] for a in answers] == [False, True, True]
    assert {post.key for _, post in backend.accepted} == {"bbs.example.cn/thread/123"}


@pytest.mark.parametrize(
    ("path", "sent_headers"),
    [
        ("/channels/forum/wenzheng", headers(POST, secret="someone-elses-secret")),
        ("/channels/forum/wenzheng", headers(POST, at=NOW - timedelta(minutes=6))),
        ("/channels/forum/wenzheng", headers(POST, at=NOW + timedelta(minutes=6))),
        ("/channels/forum/wenzheng", {"Content-Type": "application/json"}),
        ("/channels/forum/other-board", headers(POST)),
        ("/channels/forum/wenzheng", headers(POST, secret=DEMO_FORUM_SECRET)),
    ],
)
def test_a_forged_stale_or_unknown_board_push_is_403_and_nothing_is_accepted(
    forum: TestClient, backend: Backend, path: str, sent_headers: dict[str, str]
) -> None:
    r = forum.post(path, content=POST, headers=sent_headers)
    assert (r.status_code, r.json()) == (403, {"detail": "signature refused"})
    assert backend.accepted == []


def test_a_signed_push_that_is_not_json_is_415(forum: TestClient, backend: Backend) -> None:
    r = forum.post("/channels/forum/wenzheng", content=POST, headers={**headers(POST), "Content-Type": "text/xml"})
    assert r.status_code == 415 and backend.accepted == []


@pytest.mark.parametrize("body", [b"\xff\xfe not utf-8", b'{"thread_id": "1"}', POST.replace(b"123", b"../1")])
def test_a_signed_but_invalid_post_is_422(forum: TestClient, backend: Backend, body: bytes) -> None:
    r = forum.post("/channels/forum/wenzheng", content=body, headers=headers(body))
    assert r.status_code == 422 and r.json()["detail"] == "the body is not a valid post"
    assert backend.accepted == []


def test_an_oversized_push_is_413(forum: TestClient, backend: Backend) -> None:
    big = b" " * (64 * 1024 + 1)
    assert forum.post("/channels/forum/wenzheng", content=big, headers=headers(big)).status_code == 413
    assert backend.accepted == []


def test_the_reply_feed_comes_as_json_and_rss(forum: TestClient) -> None:
    data = forum.get("/channels/forum/wenzheng/replies.json").json()
    assert [(r["ticket_number"], r["unit"]) for r in data["replies"]] == [("20250303-000123", "区城市管理局")]
    r = forum.get("/channels/forum/wenzheng/replies.rss")
    assert r.headers["content-type"] == "application/rss+xml; charset=utf-8"
    parsed = feedparser.parse(r.content)
    assert parsed.version == "rss20" and parsed.entries[0].link == REPLY.thread_link
    assert forum.get("/channels/forum/nope/replies.json").status_code == 404
    assert forum.get("/channels/forum/nope/replies.rss").status_code == 404


def test_forum_staff_mark_replies_as_posted_with_a_signed_request(forum: TestClient, backend: Backend) -> None:
    body = b'{"posted": [{"reply_id": 7, "post_url": "http://bbs.example.cn/forum.php?mod=redirect&pid=9"}]}'
    r = forum.post("/channels/forum/wenzheng/replies/posted", content=body, headers=headers(body))
    assert (r.status_code, r.json()) == (200, {"marked": 1})
    assert [(board, [p.reply_id for p in m.posted]) for board, m in backend.marked] == [("wenzheng", [7])]
    forged = {**headers(body), "X-Hotline-Signature": sign("guess", str(int(NOW.timestamp())), body)}
    assert forum.post("/channels/forum/wenzheng/replies/posted", content=body, headers=forged).status_code == 403
    bad = b'{"posted": []}'
    assert forum.post("/channels/forum/wenzheng/replies/posted", content=bad, headers=headers(bad)).status_code == 422
    assert len(backend.marked) == 1


def test_demo_mode_has_a_documented_board_and_secret() -> None:
    settings = ForumSettings(demo=True)
    assert settings.boards["wenzheng"].secrets == (DEMO_FORUM_SECRET,)
    assert settings.feeds() == []


@pytest.mark.parametrize("secrets", [(DEMO_FORUM_SECRET,), ("short",)])
def test_demo_or_short_secrets_are_refused_outside_demo_mode(secrets: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError, match="HOTLINE_FORUM_BOARDS"):
        ForumSettings(demo=False, boards={"wenzheng": {"title": "网络问政", "site_url": "http://bbs.example.cn/",
                                                       "secrets": secrets}})


def test_boards_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_DEMO", raising=False)
    monkeypatch.setenv("HOTLINE_FORUM_BOARDS", json.dumps({"wenzheng": {
        "title": "网络问政", "site_url": "http://bbs.example.cn/", "encoding": "gbk",
        "feed_url": "http://bbs.example.cn/forum.php?mod=rss&fid=2", "secrets": [SECRET]}}))
    (feed,) = ForumSettings(_env_file=None).feeds()
    assert (feed.board, feed.url, feed.encoding) == ("wenzheng", "http://bbs.example.cn/forum.php?mod=rss&fid=2",
                                                     "gbk")
