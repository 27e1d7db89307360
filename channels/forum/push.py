"""The push webhook for forums that post their new threads to us: ``POST /channels/forum/{board}``.

A forum plugin signs each request with its board's secret:

- ``X-Hotline-Timestamp``: the moment of sending, in Unix seconds (decimal digits).
- ``X-Hotline-Signature``: ``sha256=`` followed by the lowercase hex HMAC-SHA256, keyed with the board's secret, of
  the timestamp's ASCII digits, one ``.`` and the raw request body (``1741000000.{"thread_id": ...}``).

A request is refused (the route answers 403) when a header is missing or malformed, when the timestamp is more than
``REPLAY_WINDOW`` (5 minutes) in the past or the future, or when the signature matches none of the board's secrets
(a board may list two while it rotates). Signatures are compared in constant time. Inside the window a captured
request replayed is harmless: the post's key is its thread, and the intake stores one message per (channel,
external_id). The same headers sign the forum plugin's "marked as posted" requests for the reply feed.

The body is JSON (``PushedPost``), at most ``MAX_PUSH_BYTES``; the thread's key is built the way the feed poller
builds it (host of the thread link + thread id), so a thread both pushed and polled is one message.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from channels.forum.text import clip, html_to_text, thread_key

SIGNATURE_HEADER = "X-Hotline-Signature"
TIMESTAMP_HEADER = "X-Hotline-Timestamp"
SIGNATURE_PREFIX = "sha256="
REPLAY_WINDOW = timedelta(minutes=5)
MAX_PUSH_BYTES = 64 * 1024
MAX_TEXT_CHARS = 10_000
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class PushRefused(Exception):
    """The request is not provably from the forum (→ 403). The reason is for our log, not for the caller."""


class PushInvalid(ValueError):
    """A signed request whose body is not a valid post (→ 422), with the validation errors."""

    def __init__(self, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Hotline-Signature`` value for a body sent at ``timestamp`` (Unix seconds as decimal digits)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, sha256).hexdigest()
    return SIGNATURE_PREFIX + mac


def signed_headers(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """The two headers a forum plugin sends with ``body`` (used by the simulator and the tests)."""
    timestamp = str(int(now.timestamp()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: datetime,
           window: timedelta = REPLAY_WINDOW) -> None:
    """Return if the request is signed by one of the board's secrets inside the window; PushRefused otherwise."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    signature = lowered.get(SIGNATURE_HEADER.lower(), "").strip()
    if not secrets:
        raise PushRefused("the board has no push secret configured")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise PushRefused(f"missing or malformed {TIMESTAMP_HEADER}")
    sent = datetime.fromtimestamp(int(timestamp), UTC)
    if sent < now - window:
        raise PushRefused(f"stale timestamp: sent {sent.isoformat()}, {now - sent} ago")
    if sent > now + window:
        raise PushRefused(f"timestamp in the future: {sent.isoformat()}")
    if not signature.startswith(SIGNATURE_PREFIX):
        raise PushRefused(f"missing or malformed {SIGNATURE_HEADER}")
    given = signature.encode("utf-8")
    matches = [hmac.compare_digest(given, sign(secret, timestamp, body).encode("ascii")) for secret in secrets]
    if not any(matches):
        raise PushRefused("signature does not match")


class PushedPost(BaseModel):
    """A new thread as a forum pushes it. ``body`` may be HTML; the ticket gets its plain text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    thread_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=50_000)
    author: str = Field(default="", max_length=100)
    link: HttpUrl
    posted_at: AwareDatetime
    contact_phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9-]{4,19}$")
    place: str | None = Field(default=None, max_length=200)
    images: list[HttpUrl] = Field(default_factory=list, max_length=9)

    @field_validator("title", "body", "author", "place")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value

    @field_validator("link", "images")
    @classmethod
    def _bounded_urls(cls, value: HttpUrl | list[HttpUrl]) -> HttpUrl | list[HttpUrl]:
        urls = value if isinstance(value, list) else [value]
        if any(len(str(url)) > 2000 for url in urls):
            raise ValueError("URLs are limited to 2000 characters")
        return value

    @property
    def key(self) -> str:
        """The external id: host of the thread link + thread id, as the feed poller makes it."""
        return thread_key(urlsplit(str(self.link)).hostname or "", self.thread_id)

    @property
    def text(self) -> str:
        return clip(html_to_text(self.body), MAX_TEXT_CHARS) or self.title

    def as_raw(self) -> dict[str, Any]:
        """The post as stored with the inbound message (JSON-serialisable)."""
        return {"source": "push", "key": self.key, **self.model_dump(mode="json")}


def parse_post(body: bytes) -> PushedPost:
    """The pushed post in a (verified) body; PushInvalid for a body too big, not UTF-8 JSON, or not a post."""
    if len(body) > MAX_PUSH_BYTES:
        raise PushInvalid(f"the body is larger than {MAX_PUSH_BYTES} bytes")
    try:
        return PushedPost.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise PushInvalid("the body is not a valid post", list(errors)) from None
