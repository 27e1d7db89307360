"""The forum wired into the running app: a forum plugin's signed pushes become tickets through the one intake point,
and the unit's official reply appears on the board's reply feed until the plugin marks it posted."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from channels.forum.push import sign, signed_headers
from channels.forum.settings import DEMO_FORUM_SECRET
from hotline.models import InboundMessage, OutboxMessage, Ticket
from hotline.services import Services
from hotline.worker import process_inbound_once
from tests.conftest import City, act

BOARD = "wenzheng"
PUSH = f"/channels/forum/{BOARD}"


def post_body(tid: int | str, *, title: str = "小区夜间施工噪音扰民",
              text: str = "<p>晚上十一点还在施工，吵得睡不着</p>", **extra: Any) -> bytes:
    post = {"thread_id": str(tid), "title": title, "body": text, "author": "张三",
            "link": f"http://bbs.example.cn/forum.php?mod=viewthread&tid={tid}",
            "posted_at": "2025-03-03T09:58:00+08:00", **extra}
    return json.dumps(post, ensure_ascii=False).encode()


def signed(body: bytes, *, secret: str = DEMO_FORUM_SECRET, at: datetime | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", **signed_headers(secret, body, at or datetime.now(UTC))}


def counts(services: Services) -> tuple[int, int]:
    with services.sessions() as s:
        return (s.scalar(select(func.count()).select_from(InboundMessage)) or 0,
                s.scalar(select(func.count()).select_from(Ticket)) or 0)


def tickets(services: Services) -> list[Ticket]:
    with services.sessions() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.id)))


def test_a_signed_push_becomes_a_forum_ticket_once_the_worker_processes_it(
    client: TestClient, city: City, services: Services
) -> None:
    body = post_body(123, contact_phone="13800001234", place="澄江街道建设路")
    r = client.post(PUSH, content=body, headers=signed(body))
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] is True and r.json()["duplicate"] is False
    assert counts(services) == (1, 0)  # accepted and acknowledged; the ticket comes later
    process_inbound_once(services)
    (ticket,) = tickets(services)
    assert (ticket.channel, ticket.title, ticket.location) == ("forum", "小区夜间施工噪音扰民", "澄江街道建设路")
    assert ticket.text == "晚上十一点还在施工，吵得睡不着"


def test_a_forged_or_stale_push_is_refused_with_403_and_nothing_stored(
    client: TestClient, city: City, services: Services
) -> None:
    body = post_body(5)
    forged = signed(body, secret="not-the-board-secret-at-all")
    stale = signed(body, at=datetime.now(UTC) - timedelta(minutes=6))
    tampered = {**signed(body), "Content-Type": "application/json"}
    unsigned = {"Content-Type": "application/json"}
    for headers in (forged, stale, unsigned):
        assert client.post(PUSH, content=body, headers=headers).status_code == 403
    assert client.post(PUSH, content=body + b" ", headers=tampered).status_code == 403
    assert client.post("/channels/forum/no-such-board", content=body, headers=signed(body)).status_code == 403
    assert counts(services) == (0, 0)


def test_hostile_pushes_get_4xx_with_nothing_stored(client: TestClient, city: City, services: Services) -> None:
    huge = post_body(6, text="噪音" * 40_000)
    assert client.post(PUSH, content=huge, headers=signed(huge)).status_code == 413
    not_utf8 = post_body(7).replace("张三".encode(), "张三".encode("gbk"))
    assert client.post(PUSH, content=not_utf8, headers=signed(not_utf8)).status_code == 422
    as_form = post_body(8)
    assert client.post(PUSH, content=as_form, headers={**signed(as_form), "Content-Type": "text/plain"}
                       ).status_code == 415
    not_a_post = b'{"thread_id": "9"}'
    assert client.post(PUSH, content=not_a_post, headers=signed(not_a_post)).status_code == 422
    assert counts(services) == (0, 0)


def test_the_same_post_pushed_three_times_is_one_ticket(client: TestClient, city: City, services: Services) -> None:
    body = post_body(77)
    answers = []
    for _ in range(3):
        r = client.post(PUSH, content=body, headers=signed(body))
        assert r.status_code == 202
        answers.append(r.json()["duplicate"])
        process_inbound_once(services)
    assert answers == [False, True, True]
    assert counts(services) == (1, 1)


def test_the_units_reply_is_on_the_board_feed_until_marked_posted(
    client: TestClient, city: City, services: Services
) -> None:
    body = post_body(321)
    assert client.post(PUSH, content=body, headers=signed(body)).status_code == 202
    process_inbound_once(services)
    (ticket,) = tickets(services)
    assert client.get(f"{PUSH}/replies.json").json()["replies"] == []
    assert act(client, city, "dispatcher", ticket.id, "dispatch", unit_id=city.ids["unit:cgj"]).status_code == 200
    assert act(client, city, "cgj", ticket.id, "sign").status_code == 200
    reply = "经核查，该工地已停止夜间施工，今后夜间施工须办理许可。"
    assert act(client, city, "cgj", ticket.id, "reply", note=reply).status_code == 200

    (item,) = client.get(f"{PUSH}/replies.json").json()["replies"]
    assert (item["ticket_number"], item["reply"], item["unit"]) == (ticket.number, reply, "明湖市城市管理局")
    assert item["thread_link"] == "http://bbs.example.cn/forum.php?mod=viewthread&tid=321"
    assert item["thread_title"] == "小区夜间施工噪音扰民"
    rss = client.get(f"{PUSH}/replies.rss")
    assert rss.headers["content-type"].startswith("application/rss+xml")
    (entry,) = feedparser.parse(rss.content).entries
    assert ticket.number in entry.title and reply in entry.summary
    assert client.get("/channels/forum/other-board/replies.json").status_code == 404

    marks = json.dumps({"posted": [{"reply_id": item["reply_id"], "post_url": "http://bbs.example.cn/p/9"},
                                   {"reply_id": 999_999}], "posted_by": "版主"}).encode()
    forged = {"Content-Type": "application/json", **signed_headers("wrong-secret-0123456789", marks,
                                                                   datetime.now(UTC))}
    assert client.post(f"{PUSH}/replies/posted", content=marks, headers=forged).status_code == 403
    assert client.get(f"{PUSH}/replies.json").json()["replies"] != []
    r = client.post(f"{PUSH}/replies/posted", content=marks, headers=signed(marks))
    assert r.status_code == 200 and r.json() == {"marked": 1}
    assert client.get(f"{PUSH}/replies.json").json()["replies"] == []
    assert client.post(f"{PUSH}/replies/posted", content=marks, headers=signed(marks)).json() == {"marked": 0}
    with services.sessions() as s:
        (row,) = s.scalars(select(OutboxMessage))
    assert (row.channel, row.kind, row.state, row.ticket_id) == ("forum", "reply", "sent", ticket.id)
    assert row.provider_id == "http://bbs.example.cn/p/9" and row.sent_at is not None


def test_a_signature_over_another_body_is_refused(client: TestClient, city: City, services: Services) -> None:
    body, other = post_body(1), post_body(2)
    timestamp = str(int(datetime.now(UTC).timestamp()))
    headers = {"Content-Type": "application/json", "X-Hotline-Timestamp": timestamp,
               "X-Hotline-Signature": sign(DEMO_FORUM_SECRET, timestamp, other)}
    assert client.post(PUSH, content=body, headers=headers).status_code == 403
    assert counts(services) == (0, 0)


def test_1000_distinct_pushes_at_once_make_exactly_1000_tickets(
    db_url: str, client: TestClient, city: City, services: Services
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("runs on PostgreSQL only (SQLite serialises writers by design)")

    def push(i: int) -> int:
        body = post_body(10_000 + i, title=f"第{i}号帖子：路灯不亮", text=f"<p>第{i}号路灯晚上不亮</p>")
        return client.post(PUSH, content=body, headers=signed(body)).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(push, range(1000)))
    assert statuses == [202] * 1000

    def drain(_: int) -> None:
        while process_inbound_once(services):
            pass

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(drain, range(3)))
    assert counts(services) == (1000, 1000)
    with services.sessions() as s:
        linked = s.scalar(select(func.count(func.distinct(InboundMessage.ticket_id))))
    assert linked == 1000
