"""The WeChat API client against the fake WeChat API over real HTTP: tokens, messages, media, errors."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests import infra
from tests.fakes.wechat_api import FakeWeChat
from wechat_bot.client import (
    AccessToken,
    MediaTooLarge,
    MemoryTokenStore,
    OutsideReplyWindow,
    RedisTokenStore,
    TokenRejected,
    WeChatClient,
    WeChatError,
    WeChatRefused,
    WeChatTemporaryError,
)
from wechat_bot.settings import WeChatSettings

OPENID = "oQx1t5Citizen0000000000000A"


@pytest.fixture
def client(wechat_api: FakeWeChat) -> Iterator[WeChatClient]:
    with WeChatClient(wechat_api.appid, wechat_api.secret, base_url=wechat_api.base_url) as c:
        yield c


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(infra.require_redis())
    yield r
    r.close()


def test_the_base_url_is_a_class_attribute_settings_can_override(wechat_api: FakeWeChat) -> None:
    assert WeChatClient.API_BASE_URL == "https://api.weixin.qq.com"
    settings = WeChatSettings(appid=wechat_api.appid, secret=wechat_api.secret, api_base=wechat_api.base_url)
    with WeChatClient.from_settings(settings) as c:
        c.send_template(OPENID, "tpl-reply", {"first": "您的诉求已答复"})
    assert wechat_api.calls("/cgi-bin/message/template/send")


def test_a_token_is_fetched_once_and_reused(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.citizen_wrote(OPENID)
    client.send_text(OPENID, "您反映的问题已受理")
    client.send_text(OPENID, "第二条")
    fetches = wechat_api.calls("/cgi-bin/token")
    assert len(fetches) == 1
    assert fetches[0].query == {"grant_type": "client_credential", "appid": wechat_api.appid,
                                "secret": wechat_api.secret}
    assert [c.query["access_token"] for c in wechat_api.calls("/cgi-bin/message/custom/send")] == ["token-1"] * 2


def test_customer_service_text_is_sent_as_literal_utf8(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.citizen_wrote(OPENID)
    client.send_text(OPENID, "受理编号：20260101000123")
    sent = wechat_api.calls("/cgi-bin/message/custom/send")[0]
    assert sent.json() == {"touser": OPENID, "msgtype": "text", "text": {"content": "受理编号：20260101000123"}}
    assert "受理编号".encode() in sent.body and b"\\u" not in sent.body


def test_a_token_expiring_within_the_margin_is_refreshed(wechat_api: FakeWeChat) -> None:
    now = [1_000_000.0]
    with WeChatClient(wechat_api.appid, wechat_api.secret, base_url=wechat_api.base_url,
                      clock=lambda: now[0]) as c:
        assert c.access_token() == "token-1"
        now[0] += 7200 - 301
        assert c.access_token() == "token-1"
        now[0] += 2
        assert c.access_token() == "token-2"


def test_an_invalidated_token_is_refreshed_once_and_the_call_repeated(
        client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.citizen_wrote(OPENID)
    client.send_text(OPENID, "一")
    wechat_api.revoke_tokens()  # someone else fetched a token with our AppSecret
    client.send_text(OPENID, "二")
    assert len(wechat_api.calls("/cgi-bin/token")) == 2
    assert [c.query["access_token"] for c in wechat_api.calls("/cgi-bin/message/custom/send")] == \
        ["token-1", "token-1", "token-2"]


def test_a_token_still_rejected_after_one_refresh_is_a_retryable_error(
        client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.fail("/cgi-bin/message/template/send", 40001, 40001)
    with pytest.raises(TokenRejected) as caught:
        client.send_template(OPENID, "tpl", {"k": "v"})
    assert caught.value.retryable
    assert len(wechat_api.calls("/cgi-bin/token")) == 2  # one refresh, not a loop


def test_outside_the_48_hour_window_says_to_fall_back_to_a_template(
        client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.citizen_wrote(OPENID, at=time.time() - 49 * 3600)
    with pytest.raises(OutsideReplyWindow) as caught:
        client.send_text(OPENID, "您的诉求已办结")
    assert caught.value.errcode == 45015 and not caught.value.retryable
    msgid = client.send_template(OPENID, "tpl-closed", {"first": "您的诉求已办结", "keyword1": "20260101000123"},
                                 url="https://12345.example.gov.cn/t/20260101000123")
    assert msgid > 0
    sent = wechat_api.calls("/cgi-bin/message/template/send")[0].json()
    assert sent == {"touser": OPENID, "template_id": "tpl-closed", "url": "https://12345.example.gov.cn/t/20260101000123",
                    "data": {"first": {"value": "您的诉求已办结"}, "keyword1": {"value": "20260101000123"}}}


def test_subscription_message_and_menu(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    from wechat_bot.messages import MENU

    client.send_subscription(OPENID, "sub-tpl", {"thing1": "路灯维修"}, page="pages/ticket")
    client.create_menu(MENU)
    assert wechat_api.calls("/cgi-bin/message/subscribe/bizsend")[0].json()["data"] == {"thing1": {"value": "路灯维修"}}
    names = [b["name"] for b in wechat_api.calls("/cgi-bin/menu/create")[0].json()["button"]]
    assert names == ["我要反映", "进度查询", "办事指南"]


@pytest.mark.parametrize(("errcode", "error", "retryable"), [
    (-1, WeChatTemporaryError, True), (45009, WeChatTemporaryError, True), (43004, WeChatRefused, False),
    (40003, WeChatRefused, False), (45047, OutsideReplyWindow, False), (99999, WeChatRefused, False)])
def test_errcodes_say_whether_a_retry_helps(client: WeChatClient, wechat_api: FakeWeChat, errcode: int,
                                            error: type[WeChatError], retryable: bool) -> None:
    wechat_api.citizen_wrote(OPENID)
    wechat_api.fail("/cgi-bin/message/custom/send", errcode)
    with pytest.raises(error) as caught:
        client.send_text(OPENID, "x")
    assert caught.value.retryable is retryable


def test_a_wrong_secret_is_refused_not_retried(wechat_api: FakeWeChat) -> None:
    with WeChatClient(wechat_api.appid, "wrong", base_url=wechat_api.base_url) as c, \
            pytest.raises(WeChatRefused, match=r"40125.*AppSecret"):
        c.access_token()


def test_an_unreachable_api_is_a_temporary_error() -> None:
    with WeChatClient("wx1", "s", base_url="http://127.0.0.1:9", timeout=1) as c, \
            pytest.raises(WeChatTemporaryError):
        c.access_token()


def test_media_is_downloaded_with_its_type(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    wechat_api.media["media_i1"] = (photo, "image/jpeg")
    media = client.download_media("media_i1")
    assert (media.content, media.content_type, media.filename) == (photo, "image/jpeg", "media_i1.jpeg")


def test_media_over_the_limit_is_refused(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.media["big"] = (b"x" * 5000, "audio/amr")
    with pytest.raises(MediaTooLarge):
        client.download_media("big", max_bytes=4096)
    assert client.download_media("big", max_bytes=5000).content == b"x" * 5000


def test_unknown_media_is_refused_and_a_revoked_token_refreshed(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    with pytest.raises(WeChatRefused, match="40007"):
        client.download_media("expired")
    wechat_api.media["m"] = (b"amr", "audio/amr")
    wechat_api.revoke_tokens()
    assert client.download_media("m").content == b"amr"


def test_secrets_in_urls_never_reach_the_log(client: WeChatClient, wechat_api: FakeWeChat,
                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"):
        client.access_token()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/cgi-bin/token" in logged
    assert wechat_api.secret not in logged and "secret=***" in logged


def test_memory_store_forgets_an_expired_token() -> None:
    now = [100.0]
    store = MemoryTokenStore(clock=lambda: now[0])
    store.refresh(lambda: AccessToken("t", 200.0))
    assert store.current() == AccessToken("t", 200.0)
    now[0] = 201.0
    assert store.current() is None


@pytest.mark.redis
def test_two_processes_refreshing_at_once_fetch_one_token(wechat_api: FakeWeChat, redis_client: redis.Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    wechat_api.token_delay_seconds = 0.5
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        connection = redis.Redis.from_url(infra.require_redis())  # each "process" has its own connection
        store = RedisTokenStore(connection, wechat_api.appid, prefix=prefix)
        with WeChatClient(wechat_api.appid, wechat_api.secret, store, base_url=wechat_api.base_url) as c:
            start.wait()
            try:
                results.append(c.access_token())
            except BaseException as exc:
                errors.append(exc)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        assert not errors
        assert results == ["token-1", "token-1"]
        assert len(wechat_api.calls("/cgi-bin/token")) == 1
        ttl = redis_client.pttl(prefix + f"wechat:{wechat_api.appid}:access_token")
        assert 7_000_000 < ttl <= 7_200_000  # Redis drops it when WeChat would
    finally:
        for key in redis_client.scan_iter(prefix + "*"):
            redis_client.delete(key)


@pytest.mark.redis
def test_a_process_with_a_stale_token_takes_the_one_another_just_fetched(
        wechat_api: FakeWeChat, redis_client: redis.Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    try:
        a = WeChatClient(wechat_api.appid, wechat_api.secret, RedisTokenStore(redis_client, wechat_api.appid, prefix),
                         base_url=wechat_api.base_url)
        b = WeChatClient(wechat_api.appid, wechat_api.secret, RedisTokenStore(redis_client, wechat_api.appid, prefix),
                         base_url=wechat_api.base_url)
        wechat_api.citizen_wrote(OPENID)
        a.send_text(OPENID, "一")  # token-1, shared
        wechat_api.revoke_tokens()
        a.send_text(OPENID, "二")  # a refreshes: token-2
        stale = b.tokens.refresh(b.fetch_access_token, stale="token-1")  # b saw token-1 rejected meanwhile
        assert stale.value == "token-2"
        assert len(wechat_api.calls("/cgi-bin/token")) == 2
        a.close()
        b.close()
    finally:
        for key in redis_client.scan_iter(prefix + "*"):
            redis_client.delete(key)


@pytest.mark.redis
def test_a_refresher_that_cannot_get_the_lock_gives_up_without_fetching(
        wechat_api: FakeWeChat, redis_client: redis.Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisTokenStore(redis_client, wechat_api.appid, prefix, wait_seconds=0.3)
    held = redis_client.lock(store.key + ":refresh", timeout=5)
    assert held.acquire()
    try:
        with WeChatClient(wechat_api.appid, wechat_api.secret, store, base_url=wechat_api.base_url) as c, \
                pytest.raises(WeChatTemporaryError, match="another process"):
            c.access_token()
        assert wechat_api.calls("/cgi-bin/token") == []
    finally:
        held.release()
