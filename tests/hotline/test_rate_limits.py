"""Rate limits on one backend (Redis when configured): two app instances — two API workers — share every count.
Logins per account, webhooks per client (WeChat openid, forum board, Twilio caller, Open311 api_key); each answers
in its own protocol's way with the wait."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from channels.open311.settings import DEMO_OPEN311_KEYS
from channels.phone.prompts import PhonePrompts
from hotline.app import create_app
from hotline.login_guard import LoginGuard
from hotline.models import InboundMessage
from hotline.ratelimit import WEBHOOK_LIMITS, Counters, Limit, RateLimiter
from hotline.services import Services
from tests import infra
from tests.channels.forum.test_wiring import post_body, signed
from tests.channels.phone.conftest import AUTH_TOKEN, PUBLIC_BASE, phone_settings
from tests.conftest import City
from tests.fakes.twilio_caller import TwilioCaller
from tests.wechat_bot.peer import WeChat, reply_text, text_xml

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def two_workers(services: Services, city: City, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps on one database and one Redis, as two `hotline serve` workers are (a fresh namespace per test)."""
    redis_url = infra.require_redis()
    namespace = f"test-{uuid.uuid4().hex}"
    settings = services.settings.model_copy(update={"phone": phone_settings(twilio_api_base="http://127.0.0.1:9")})
    apps = []
    for _ in range(2):
        counters = Counters(redis_url, namespace)
        worker = replace(services, settings=settings, rate_limiter=RateLimiter(counters),
                         login_guard=LoginGuard(counters=counters))
        apps.append(create_app(settings, worker))
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        yield first, second


def stored(services: Services, channel: str) -> int:
    with services.sessions() as s:
        return s.scalar(select(func.count()).select_from(InboundMessage).where(InboundMessage.channel == channel)) or 0


def test_failed_logins_on_one_worker_slow_the_account_on_the_other(two_workers: tuple[TestClient, TestClient]) -> None:
    first, second = two_workers
    for n in range(5):  # Policy.account_free failures, spread over both workers
        worker = first if n % 2 else second
        assert worker.post("/api/auth/login", json={"username": "agent", "password": "wrong"}).status_code == 401
    refused = first.post("/api/auth/login", json={"username": "agent", "password": "agent123"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["detail"].startswith("登录失败次数过多")
    assert second.post("/api/auth/login", json={"username": "agent", "password": "agent123"}).status_code == 429


def test_open311_clients_are_limited_per_api_key_in_the_spec_error_format(
    two_workers: tuple[TestClient, TestClient], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an hour's window: a minute's could start anew between the requests on a loaded machine (fixed windows)
    monkeypatch.setitem(WEBHOOK_LIMITS, "open311_key", Limit(3, 3600))
    first, second = two_workers
    form = {"api_key": DEMO_OPEN311_KEYS["demo-client"], "service_code": "1501", "address_string": "澄江街道建设路",
            "description": "建设路口有人占道摆摊，堵住了盲道"}
    for n in range(3):
        answer = (first if n % 2 else second).post("/open311/v2/requests.json", data=form)
        assert answer.status_code == 201, answer.text
    refused = first.post("/open311/v2/requests.json", data=form)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    (error,) = refused.json()
    assert error["code"] == 429 and error["description"].startswith("请求过于频繁")
    as_xml = second.post("/open311/v2/requests.xml", data=form)
    assert as_xml.status_code == 429 and ET.fromstring(as_xml.content).findtext("error/code") == "429"
    assert stored(services, "open311") == 3


def test_forum_pushes_are_limited_per_board(
    two_workers: tuple[TestClient, TestClient], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(WEBHOOK_LIMITS, "forum_board", Limit(2, 60))
    first, second = two_workers

    def push(client: TestClient, tid: int) -> int:
        body = post_body(tid)
        response = client.post("/channels/forum/wenzheng", content=body, headers=signed(body))
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1 and "推送过于频繁" in response.json()["detail"]
        return response.status_code

    assert [push(first, 1), push(second, 2), push(first, 3)] == [202, 202, 429]
    assert stored(services, "forum") == 2


def test_a_wechat_citizen_over_the_limit_is_answered_not_refused(
    two_workers: tuple[TestClient, TestClient], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(WEBHOOK_LIMITS, "wechat_openid", Limit(2, 60))
    s = services.settings.wechat
    peers = [WeChat(client, s.token, s.appid, s.aes_key) for client in two_workers]
    answers = [peers[n % 2].post(text_xml("o-flood", f"路灯坏了第{n}次")) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]  # a non-200 would make WeChat retry
    assert "已收到" in reply_text(answers[0])
    assert "太频繁" in reply_text(answers[2]) and "1分钟后" in reply_text(answers[2])
    assert stored(services, "wechat") == 2
    assert "已收到" in reply_text(peers[0].post(text_xml("o-someone-else", "小区门口的垃圾没人清运")))


def test_a_number_calling_too_often_is_told_so_and_the_call_ends(
    two_workers: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(WEBHOOK_LIMITS, "twilio_caller", Limit(2, 600))

    def dial(client: TestClient, number: str) -> list[str]:
        return TwilioCaller(client, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE, from_=number).dial_in().tags

    first, second = two_workers
    assert "Gather" in dial(first, "+8613812345678") and "Gather" in dial(second, "+8613812345678")
    third = TwilioCaller(first, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE, from_="+8613812345678").dial_in()
    assert third.tags == ["Say", "Hangup"]
    assert third.one("Say").text == PhonePrompts().too_many_calls
    assert "Gather" in dial(second, "+8613900001111")  # another caller is not affected
