"""The safe-mode protocol, checked against wechatpy as the reference implementation."""

from __future__ import annotations

import base64
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from wechat_bot.crypto import (
    ForgedSignature,
    MessageCipher,
    MessageCrypto,
    StaleTimestamp,
    UndecryptableMessage,
    check_timestamp,
    signature,
    verify_signature,
)
from wechat_bot.messages import encrypted_reply, parse_envelope, parse_xml
from wechat_bot.settings import DEMO_AES_KEY, decode_aes_key

TOKEN = "CityToken123"
APPID = "wx1234567890abcdef"
KEY = DEMO_AES_KEY
OLD_KEY = "PreviousDemoAESKeyOfMingHuCity0123456789abc"
PUSH = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content><![CDATA[建设路路灯不亮了]]></Content></xml>"


def theirs_encrypt(crypto: WeChatCrypto, message: str, timestamp: str = "1700000000",
                   nonce: str = "n0nce") -> dict[str, str]:
    fields = parse_xml(crypto.encrypt_message(message, nonce, timestamp).encode())
    return {"encrypted": fields["Encrypt"], "msg_signature": fields["MsgSignature"], "timestamp": timestamp,
            "nonce": nonce}


def test_url_signature_is_what_wechatpy_checks() -> None:
    sig = signature(TOKEN, "1700000000", "abc")
    check_signature(TOKEN, sig, "1700000000", "abc")  # raises if wrong
    verify_signature(TOKEN, sig, "1700000000", "abc")
    verify_signature(TOKEN, sig.upper(), "1700000000", "abc")


@pytest.mark.parametrize("change", ["token", "timestamp", "nonce", "signature"])
def test_a_forged_url_signature_is_refused(change: str) -> None:
    args = {"token": TOKEN, "timestamp": "1700000000", "nonce": "abc"}
    sig = signature(*args.values())
    if change == "signature":
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    else:
        args[change] += "x"
    with pytest.raises(ForgedSignature):
        verify_signature(args["token"], sig, args["timestamp"], args["nonce"])
    with pytest.raises(InvalidSignatureException):
        check_signature(args["token"], sig, args["timestamp"], args["nonce"])


def test_a_non_hex_signature_is_refused_not_crashed() -> None:
    with pytest.raises(ForgedSignature):
        verify_signature(TOKEN, "签名" * 20, "1700000000", "abc")


def test_what_wechatpy_encrypts_we_open() -> None:
    sealed = theirs_encrypt(WeChatCrypto(TOKEN, KEY, APPID), PUSH)
    opened = MessageCrypto(TOKEN, APPID, KEY).open(**sealed)
    assert opened.message.decode() == PUSH
    assert not opened.previous_key


def test_what_we_encrypt_wechatpy_opens() -> None:
    sealed = MessageCrypto(TOKEN, APPID, KEY).seal(PUSH.encode(), "1700000001", "nonce2")
    envelope = encrypted_reply(sealed).decode()
    theirs = WeChatCrypto(TOKEN, KEY, APPID)
    assert theirs.decrypt_message(envelope, sealed.msg_signature, "1700000001", "nonce2") == PUSH


@settings(max_examples=60, deadline=None)
@given(message=st.text(max_size=600), random16=st.binary(min_size=16, max_size=16))
def test_round_trips_both_ways_for_any_text(message: str, random16: bytes) -> None:
    ours = MessageCipher(KEY, APPID)
    theirs = WeChatCrypto(TOKEN, KEY, APPID)
    encrypted = ours.encrypt(message.encode(), random16)
    xml = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    assert theirs.decrypt_message(xml, signature(TOKEN, "1", "n", encrypted), "1", "n") == message
    assert MessageCrypto(TOKEN, APPID, KEY).open(**theirs_encrypt(theirs, message)).message.decode() == message


def test_ciphertext_is_padded_to_32_byte_blocks() -> None:
    for size in range(0, 70):
        raw = base64.b64decode(MessageCipher(KEY, APPID).encrypt(b"x" * size))
        assert len(raw) % 32 == 0
        assert len(raw) >= 20 + size + len(APPID)


def test_a_message_for_another_appid_is_refused() -> None:
    sealed = theirs_encrypt(WeChatCrypto(TOKEN, KEY, "wxsomeoneelse00000"), PUSH)
    with pytest.raises(UndecryptableMessage, match="another appid"):
        MessageCrypto(TOKEN, APPID, KEY).open(**sealed)


def test_a_tampered_message_fails_its_msg_signature() -> None:
    sealed = theirs_encrypt(WeChatCrypto(TOKEN, KEY, APPID), PUSH)
    raw = bytearray(base64.b64decode(sealed["encrypted"]))
    raw[20] ^= 1
    sealed["encrypted"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ForgedSignature):
        MessageCrypto(TOKEN, APPID, KEY).open(**sealed)


def test_a_correctly_signed_message_under_an_unknown_key_is_refused() -> None:
    stranger = "StrangerAESKeyStrangerAESKeyStrangerAESKeyA"
    sealed = theirs_encrypt(WeChatCrypto(TOKEN, stranger, APPID), PUSH)
    with pytest.raises(UndecryptableMessage):
        MessageCrypto(TOKEN, APPID, KEY, previous_aes_key=OLD_KEY).open(**sealed)


def test_garbage_in_encrypt_is_refused() -> None:
    crypto = MessageCrypto(TOKEN, APPID, KEY)
    for garbage in ["not base64!", base64.b64encode(b"short").decode(), ""]:
        with pytest.raises(UndecryptableMessage):
            crypto.open(garbage, signature(TOKEN, "1", "n", garbage), "1", "n")


def test_the_previous_key_is_still_accepted_while_the_city_rotates_it() -> None:
    crypto = MessageCrypto(TOKEN, APPID, KEY, previous_aes_key=OLD_KEY)
    sealed = theirs_encrypt(WeChatCrypto(TOKEN, OLD_KEY, APPID), PUSH)
    opened = crypto.open(**sealed)
    assert opened.message.decode() == PUSH and opened.previous_key
    # the reply goes back under the key that opened the push
    reply = crypto.seal(b"<xml>ok</xml>", "1700000002", "n3", opened.cipher)
    envelope = encrypted_reply(reply).decode()
    assert WeChatCrypto(TOKEN, OLD_KEY, APPID).decrypt_message(envelope, reply.msg_signature, "1700000002", "n3") \
        == "<xml>ok</xml>"
    with pytest.raises(UndecryptableMessage):
        MessageCrypto(TOKEN, APPID, KEY).open(**sealed)  # without the previous key configured


def test_encrypted_reply_envelope_parses_back() -> None:
    sealed = MessageCrypto(TOKEN, APPID, KEY).seal("回复".encode(), "1700000003", "abc")
    envelope = parse_envelope(encrypted_reply(sealed))
    assert envelope.encrypted == sealed.encrypted
    assert re.fullmatch(r"[0-9a-f]{40}", sealed.msg_signature)


def test_timestamps_outside_the_window_are_stale() -> None:
    now = time.time()
    assert check_timestamp(str(int(now) - 299), now, 300) == int(now) - 299
    check_timestamp(str(int(now) + 200), now, 300)
    for stale in [str(int(now) - 301), str(int(now) + 400), "0", "yesterday", ""]:
        with pytest.raises(StaleTimestamp):
            check_timestamp(stale, now, 300)


@pytest.mark.parametrize("bad", ["short", DEMO_AES_KEY + "A", DEMO_AES_KEY[:-1] + "!"])
def test_an_encoding_aes_key_must_be_43_base64_characters(bad: str) -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        decode_aes_key(bad)
