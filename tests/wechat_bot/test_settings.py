"""HOTLINE_WECHAT_* settings: demo values that work, refused when malformed, named when still in use."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wechat_bot.crypto import MessageCrypto
from wechat_bot.settings import DEMO_AES_KEY, WeChatSettings


def test_the_demo_values_form_a_working_account() -> None:
    demo = WeChatSettings()
    assert demo.aes_key == DEMO_AES_KEY and demo.api_base == "https://api.weixin.qq.com"
    crypto = MessageCrypto(demo.token, demo.appid, demo.aes_key)
    sealed = crypto.seal(b"<xml/>", "1", "n")
    assert crypto.open(sealed.encrypted, sealed.msg_signature, "1", "n").message == b"<xml/>"
    assert demo.demo_values_in_use() == ["HOTLINE_WECHAT_TOKEN", "HOTLINE_WECHAT_APPID", "HOTLINE_WECHAT_AES_KEY",
                                         "HOTLINE_WECHAT_SECRET"]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_WECHAT_TOKEN", "MingHu12345Token")
    monkeypatch.setenv("HOTLINE_WECHAT_APPID", "wx1234567890abcdef")
    monkeypatch.setenv("HOTLINE_WECHAT_AES_KEY", "PreviousDemoAESKeyOfMingHuCity0123456789abc")
    monkeypatch.setenv("HOTLINE_WECHAT_PREVIOUS_AES_KEY", DEMO_AES_KEY)
    monkeypatch.setenv("HOTLINE_WECHAT_SECRET", "a-real-secret")
    monkeypatch.setenv("HOTLINE_WECHAT_API_BASE", "http://127.0.0.1:9999")
    s = WeChatSettings()
    assert (s.token, s.appid, s.previous_aes_key, s.api_base) == \
        ("MingHu12345Token", "wx1234567890abcdef", DEMO_AES_KEY, "http://127.0.0.1:9999")
    assert s.demo_values_in_use() == []


@pytest.mark.parametrize(("name", "value"), [("aes_key", "too-short"), ("previous_aes_key", "!" * 43),
                                             ("token", "has spaces"), ("token", "ab")])
def test_malformed_values_are_refused_at_start_up(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        WeChatSettings.model_validate({name: value})


def test_an_empty_aes_key_means_plain_mode_only() -> None:
    assert WeChatSettings(aes_key="").aes_key is None
