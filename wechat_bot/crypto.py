"""The WeChat server protocol's cryptography: signatures, timestamp freshness, safe-mode message encryption.

- URL verification and plain-mode pushes carry ``signature`` = SHA-1 over the sorted, concatenated token,
  timestamp and nonce. Safe-mode pushes carry ``msg_signature`` = SHA-1 over the sorted token, timestamp, nonce and
  the ``Encrypt`` text, which therefore also covers the message.
- Safe mode (安全模式) encrypts with AES-256-CBC: the key is the EncodingAESKey (43 base64 characters plus "="),
  the IV its first 16 bytes, the padding PKCS#7 to a 32-byte block. The plaintext is 16 random bytes, the message
  length as 4 bytes in network order, the message, then the account's appid, which must be ours.
- When a city rotates its EncodingAESKey, WeChat may still encrypt with the previous one for a while: the previous
  key stays accepted, and the reply is encrypted with whichever key opened the message.
- A timestamp further than the window from our clock is refused: a captured request cannot be replayed later.

Why our own code rather than wechatpy: wechatpy 1.8.18 implements all of this, but it has had no stable release
since 2021 (2.0 stays an alpha) and parses XML with xmltodict, which leaves entity handling to the pinned version.
The protocol is a page of code over ``hashlib`` and ``cryptography``; the tests check it against wechatpy as the
reference implementation: what we encrypt, wechatpy decrypts, and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wechat_bot.settings import decode_aes_key

BLOCK_BITS = 256  # WeChat pads to 32 bytes, not to AES's 16


class Refused(Exception):
    """A request that must not be processed (answered with 403 and logged); the message says why."""


class ForgedSignature(Refused):
    pass


class StaleTimestamp(Refused):
    pass


class UndecryptableMessage(Refused):
    pass


def signature(*parts: str) -> str:
    """SHA-1 (hex) over the parts sorted and concatenated: the token, timestamp, nonce (and the Encrypt text)."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("ascii", "replace"))


def verify_signature(token: str, given: str, timestamp: str, nonce: str) -> None:
    """The URL-verification / plain-mode signature, or ForgedSignature."""
    if not _same(signature(token, timestamp, nonce), given):
        raise ForgedSignature("signature does not match the token, timestamp and nonce")


def verify_msg_signature(token: str, given: str, timestamp: str, nonce: str, encrypted: str) -> None:
    """The safe-mode msg_signature over the Encrypt text too, or ForgedSignature."""
    if not _same(signature(token, timestamp, nonce, encrypted), given):
        raise ForgedSignature("msg_signature does not match the token, timestamp, nonce and message")


def check_timestamp(timestamp: str, now: float, window_seconds: int) -> int:
    """The request's timestamp as an int if within the window of ``now`` (either way), else StaleTimestamp."""
    try:
        value = int(timestamp)
    except ValueError:
        raise StaleTimestamp(f"timestamp {timestamp[:20]!r} is not a number of seconds") from None
    if abs(now - value) > window_seconds:
        raise StaleTimestamp(f"timestamp is {int(now - value)} s away from our clock (window {window_seconds} s)")
    return value


class MessageCipher:
    """AES-256-CBC with one EncodingAESKey for one appid, in WeChat's message layout."""

    def __init__(self, encoding_aes_key: str, appid: str) -> None:
        self.key = decode_aes_key(encoding_aes_key)
        self.appid = appid

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: bytes, random16: bytes | None = None) -> str:
        """The base64 text of the ``Encrypt`` element."""
        nonce = secrets.token_bytes(16) if random16 is None else random16
        if len(nonce) != 16:
            raise ValueError("the random prefix is 16 bytes")
        plain = nonce + struct.pack(">I", len(message)) + message + self.appid.encode("utf-8")
        padder = padding.PKCS7(BLOCK_BITS).padder()
        padded = padder.update(plain) + padder.finalize()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside an ``Encrypt`` text, or UndecryptableMessage (bad key, damaged, another appid)."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise UndecryptableMessage("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise UndecryptableMessage("Encrypt is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(BLOCK_BITS).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise UndecryptableMessage("padding is wrong (another key, or a damaged message)") from None
        if len(plain) < 20:
            raise UndecryptableMessage("the decrypted message is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise UndecryptableMessage("the length inside the message is larger than the message")
        message, appid = plain[20 : 20 + length], plain[20 + length :]
        if appid != self.appid.encode("utf-8"):
            raise UndecryptableMessage("the message is for another appid")
        return message


@dataclass(frozen=True)
class Opened:
    """A decrypted push and the cipher that opened it (the reply is encrypted with the same one)."""

    message: bytes
    cipher: MessageCipher
    previous_key: bool


@dataclass(frozen=True)
class SealedReply:
    """The four fields of an encrypted passive reply."""

    encrypted: str
    msg_signature: str
    timestamp: str
    nonce: str


class MessageCrypto:
    """Safe mode for one account: the token, the appid, the current EncodingAESKey and perhaps the previous one."""

    def __init__(self, token: str, appid: str, aes_key: str, previous_aes_key: str | None = None) -> None:
        self.token = token
        self.current = MessageCipher(aes_key, appid)
        self.previous = MessageCipher(previous_aes_key, appid) if previous_aes_key else None

    def open(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> Opened:
        """Check msg_signature, then decrypt with the current key or else the previous one."""
        verify_msg_signature(self.token, msg_signature, timestamp, nonce, encrypted)
        try:
            return Opened(self.current.decrypt(encrypted), self.current, previous_key=False)
        except UndecryptableMessage:
            if self.previous is None:
                raise
        try:
            return Opened(self.previous.decrypt(encrypted), self.previous, previous_key=True)
        except UndecryptableMessage as exc:
            raise UndecryptableMessage(f"{exc} (tried the current and the previous key)") from None

    def seal(self, message: bytes, timestamp: str, nonce: str, cipher: MessageCipher | None = None) -> SealedReply:
        """Encrypt and sign a passive reply (with ``cipher``, the one that opened the push, else the current key)."""
        encrypted = (cipher or self.current).encrypt(message)
        return SealedReply(encrypted, signature(self.token, timestamp, nonce, encrypted), timestamp, nonce)
