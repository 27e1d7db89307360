"""The forum push webhook accepts only bodies signed with the board's secret, inside a five-minute window."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from channels.forum.push import (
    MAX_PUSH_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PushInvalid,
    PushRefused,
    parse_post,
    sign,
    signed_headers,
    verify,
)

SECRET = "board-secret-0123456789abcdef"
NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
POST = {
    "thread_id": "123",
    "title": "小区夜间施工噪音扰民",
    "body": "<p>晚上十一点还在施工</p><p>请管一管</p>",
    "author": "张三",
    "link": "http://bbs.example.cn/forum.php?mod=viewthread&tid=123",
    "posted_at": "2025-03-03T09:58:00+08:00",
}
Forgery = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def body(**changes: object) -> bytes:
    return json.dumps({**POST, **changes}, ensure_ascii=False).encode()


def test_a_body_signed_with_the_board_secret_just_now_is_accepted() -> None:
    raw = body()
    verify([SECRET], signed_headers(SECRET, raw, NOW), raw, NOW)
    verify([SECRET], signed_headers(SECRET, raw, NOW - timedelta(minutes=4, seconds=59)), raw, NOW)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    assert sign("key", "1741000000", b"{}") == \
        "sha256=" + hmac.new(b"key", b"1741000000.{}", "sha256").hexdigest()


def test_header_names_are_case_insensitive() -> None:
    raw = body()
    headers = {k.lower(): v for k, v in signed_headers(SECRET, raw, NOW).items()}
    verify([SECRET], headers, raw, NOW)


def test_the_previous_secret_still_works_while_the_board_rotates_it() -> None:
    raw = body()
    verify(["new-secret-0123456789", SECRET], signed_headers(SECRET, raw, NOW), raw, NOW)


@pytest.mark.parametrize(
    "forge",
    [
        lambda h, b: ({**h, SIGNATURE_HEADER: sign("wrong-secret", h[TIMESTAMP_HEADER], b)}, b),
        lambda h, b: (h, b.replace("张三".encode(), "李四".encode())),  # body changed after signing
        lambda h, b: ({**h, TIMESTAMP_HEADER: str(int(h[TIMESTAMP_HEADER]) + 1)}, b),  # timestamp changed
        lambda h, b: ({TIMESTAMP_HEADER: h[TIMESTAMP_HEADER]}, b),  # no signature
        lambda h, b: ({SIGNATURE_HEADER: h[SIGNATURE_HEADER]}, b),  # no timestamp
        lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER].removeprefix("sha256=")}, b),
        lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER].upper()}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "1741000000.5"}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "１７４１"}, b),  # full-width digits
        lambda h, b: ({**h, SIGNATURE_HEADER: "sha256=签名"}, b),
    ],
)
def test_a_forged_request_is_refused(forge: Forgery) -> None:
    raw = body()
    headers, sent = forge(signed_headers(SECRET, raw, NOW), raw)
    with pytest.raises(PushRefused):
        verify([SECRET], headers, sent, NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-5, seconds=-1), timedelta(hours=-1),
                                    timedelta(minutes=5, seconds=1), timedelta(days=365)])
def test_a_correctly_signed_but_stale_or_future_request_is_refused(offset: timedelta) -> None:
    raw = body()
    with pytest.raises(PushRefused, match=r"stale|future"):
        verify([SECRET], signed_headers(SECRET, raw, NOW + offset), raw, NOW)


def test_a_board_without_secrets_refuses_everything() -> None:
    raw = body()
    with pytest.raises(PushRefused):
        verify([], signed_headers(SECRET, raw, NOW), raw, NOW)


def test_a_pushed_post_has_the_same_key_as_the_polled_thread_and_plain_text() -> None:
    post = parse_post(body())
    assert post.key == "bbs.example.cn/thread/123"
    assert post.text == "晚上十一点还在施工\n请管一管"
    assert post.posted_at == datetime(2025, 3, 3, 1, 58, tzinfo=UTC)
    assert json.loads(json.dumps(post.as_raw()))["author"] == "张三"


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe not utf-8",
        b"[]",
        b"not json",
        body(thread_id="../etc"),
        body(title=""),
        body(title="长" * 201),
        body(body="a\u0000b"),
        body(link="javascript:alert(1)"),
        body(posted_at="2025-03-03T09:58:00"),  # no time zone
        body(images=["http://x.cn/1.jpg"] * 10),
        body(contact_phone="call me"),
        body(unknown="field"),
        body(body="长" * 30_000),  # over the byte limit
    ],
)
def test_an_invalid_body_is_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(PushInvalid) as refused:
        parse_post(raw)
    assert str(refused.value)
    json.dumps(refused.value.errors)
    if len(raw) > MAX_PUSH_BYTES:
        assert "larger than" in str(refused.value)
