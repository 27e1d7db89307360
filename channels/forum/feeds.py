"""The poller core for the RSS/Atom feeds of the forum's boards (网络问政 boards of the city forum).

Each configured board has a feed URL and a ``FeedCursor`` that the caller persists between polls (``to_json`` /
``from_json``). ``FeedPoller.poll_all`` fetches every feed that is not backing off, with our own httpx client
(timeouts, a size limit, ``If-None-Match`` / ``If-Modified-Since``), and hands feedparser the bytes; a feed that fails
in any way (network, HTTP status, not a feed, undecodable) gets its own error and back-off and never stops the others.

Real forums are messy, and each mess has its rule:

- Discuz! ``forum.php?mod=rss`` items have no guid: a post's key is the forum's host plus the thread id (tid) from
  its link, in any of the link forms (``thread-123-1-1.html``, ``viewthread.php?tid=123``,
  ``forum.php?mod=viewthread&tid=123``), so the same thread polled twice, or pushed by webhook, has one key.
- A board with RSS switched off answers the plain text ``RSS Disabled`` with status 200: a per-feed error saying so.
- While Discuz! rebuilds its feed cache it may answer an empty channel: no posts, the cursor stays as it was (its
  validators too, so the next poll fetches the full feed again).
- Encodings: GBK declared in the XML prolog, or only in the HTTP header, or declared wrongly. The bytes are decoded
  here, trying in order the board's configured encoding, UTF-8, the HTTP charset, the prolog's encoding and GB18030
  (the superset of GBK and GB2312), the first that decodes without error winning. Chinese text in GBK practically
  never decodes as UTF-8, so a wrong declaration cannot garble it.
- A feed declaring XML entities is refused: no real feed needs them, and they are how entity-expansion attacks work.

A post is new when its key is not among the cursor's ``seen`` keys and it is not older than a week before the newest
post seen (a long-known thread reappearing after the seen list overflowed is not a new post). The intake
deduplicates on (channel, external_id) anyway; the cursor only keeps the poller from resubmitting the whole feed.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx

from channels.forum.settings import FeedConfig
from channels.forum.text import bounded_key, clip, discuz_thread_id, html_to_text, thread_key

log = logging.getLogger(__name__)

SEEN_LIMIT = 1000
LOOKBACK = timedelta(days=7)
MAX_FEED_BYTES = 4 * 1024 * 1024
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 10_000
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = "hotline-12345-forum-poller/1.0"
_GBK_FAMILY = frozenset({"gbk", "gb2312", "gb18030", "cp936", "ms936", "x-gbk", "euc-cn", "hz-gb-2312"})
_PROLOG = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._:-]{1,40})[\"']")
_PROLOG_TEXT = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")
_ENTITY_DECLARATION = re.compile(r"<!ENTITY", re.IGNORECASE)


class PollStatus(StrEnum):
    OK = "ok"  # fetched and parsed; ``posts`` holds the new ones (possibly none)
    NOT_MODIFIED = "not_modified"  # 304: nothing changed since the cursor's validators
    EMPTY = "empty"  # a well-formed feed without entries (a forum rebuilding its cache): cursor unchanged
    FAILED = "failed"  # see ``error``; the cursor backs off
    WAITING = "waiting"  # still backing off after earlier failures: not fetched


class FeedError(Exception):
    """A feed that cannot be used this time, with a reason an operator can act on (and the forum's Retry-After)."""

    def __init__(self, reason: str, retry_after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class FeedCursor:
    """What the poller remembers about one feed; the caller persists it (``to_json``) between polls."""

    etag: str | None = None
    last_modified: str | None = None
    seen: list[str] = field(default_factory=list)  # keys of the posts seen, newest poll first, at most SEEN_LIMIT
    newest: datetime | None = None  # the latest publication time among the posts seen
    failures: int = 0  # consecutive failed polls
    retry_at: datetime | None = None  # no fetch before this moment (back-off)
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "last_modified": self.last_modified,
            "seen": list(self.seen),
            "newest": self.newest.isoformat() if self.newest else None,
            "failures": self.failures,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
            "last_error": self.last_error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeedCursor:
        def moment(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        return cls(
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            seen=[str(k) for k in data.get("seen", [])][:SEEN_LIMIT],
            newest=moment(data.get("newest")),
            failures=int(data.get("failures", 0)),
            retry_at=moment(data.get("retry_at")),
            last_error=data.get("last_error"),
        )


@dataclass(frozen=True)
class ForumPost:
    """One post from a board, ready to become an ``InboundMessage`` (channel "forum", external_id = ``key``)."""

    board: str
    key: str
    title: str
    text: str
    author: str
    link: str
    published: datetime | None
    thread_id: str | None = None

    def as_raw(self) -> dict[str, Any]:
        """The post as stored with the inbound message (JSON-serialisable)."""
        return {
            "source": "feed",
            "board": self.board,
            "key": self.key,
            "thread_id": self.thread_id,
            "title": self.title,
            "text": self.text,
            "author": self.author,
            "link": self.link,
            "published": self.published.isoformat() if self.published else None,
        }


@dataclass(frozen=True)
class FeedResult:
    feed: FeedConfig
    status: PollStatus
    cursor: FeedCursor  # the cursor to persist for the next poll
    posts: tuple[ForumPost, ...] = ()  # new posts, oldest first
    error: str | None = None


@dataclass(frozen=True)
class _Fetched:
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FeedPoller:
    """Polls feeds with one shared httpx client; see the module docstring for the rules."""

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        max_bytes: int = MAX_FEED_BYTES,
        backoff_base: timedelta = timedelta(minutes=1),
        backoff_max: timedelta = timedelta(hours=6),
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=True,
                                              headers={"User-Agent": USER_AGENT})
        self._max_bytes = max_bytes
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._now = now

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> FeedPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backoff(self, failures: int) -> timedelta:
        """The wait after ``failures`` consecutive failures: base, 2×base, 4×base, ... up to the maximum."""
        exponent = min(max(failures - 1, 0), 30)
        return min(self._backoff_base * (2**exponent), self._backoff_max)

    def poll_all(self, feeds: Iterable[tuple[FeedConfig, FeedCursor]]) -> list[FeedResult]:
        """Poll each feed in turn; whatever goes wrong with one feed is that feed's result, not an exception."""
        results = []
        for feed, cursor in feeds:
            try:
                results.append(self.poll(feed, cursor))
            except Exception as exc:  # one broken feed never stops the others
                log.exception("forum feed %s (%s): unexpected failure", feed.board, feed.url)
                results.append(self._failed(feed, cursor, f"unexpected {type(exc).__name__}: {exc}", None))
        return results

    def poll(self, feed: FeedConfig, cursor: FeedCursor) -> FeedResult:
        now = self._now()
        if cursor.retry_at is not None and now < cursor.retry_at:
            return FeedResult(feed, PollStatus.WAITING, cursor, error=cursor.last_error)
        try:
            fetched = self._fetch(feed, cursor)
        except FeedError as exc:
            return self._failed(feed, cursor, str(exc), exc.retry_after)
        except httpx.HTTPError as exc:
            return self._failed(feed, cursor, f"{type(exc).__name__}: {exc}", None)
        recovered = replace(cursor, failures=0, retry_at=None, last_error=None)
        if fetched is None:
            return FeedResult(feed, PollStatus.NOT_MODIFIED, recovered)
        try:
            entries = parse_feed(feed, fetched.body, fetched.content_type)
        except FeedError as exc:
            return self._failed(feed, cursor, str(exc), None)
        if not entries:
            return FeedResult(feed, PollStatus.EMPTY, recovered)
        fresh = [post for post in entries if _is_new(post, cursor)]
        fresh.sort(key=lambda p: p.published or now)
        keys = [post.key for post in entries]
        current = set(keys)
        seen = (list(dict.fromkeys(keys)) + [k for k in cursor.seen if k not in current])[:SEEN_LIMIT]
        dates = [p.published for p in entries if p.published is not None]
        if cursor.newest is not None:
            dates.append(cursor.newest)
        next_cursor = FeedCursor(etag=fetched.etag, last_modified=fetched.last_modified, seen=seen,
                                 newest=max(dates) if dates else None)
        return FeedResult(feed, PollStatus.OK, next_cursor, tuple(fresh))

    def _fetch(self, feed: FeedConfig, cursor: FeedCursor) -> _Fetched | None:
        headers = {}
        if cursor.etag:
            headers["If-None-Match"] = cursor.etag
        if cursor.last_modified:
            headers["If-Modified-Since"] = cursor.last_modified
        with self._client.stream("GET", feed.url, headers=headers) as response:
            if response.status_code == 304:
                return None
            if response.status_code != 200:
                raise FeedError(f"HTTP {response.status_code} from the forum",
                                _retry_after(response.headers.get("retry-after")))
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise FeedError(f"the feed is larger than {self._max_bytes} bytes")
            return _Fetched(bytes(body), response.headers.get("content-type"), response.headers.get("etag"),
                            response.headers.get("last-modified"))

    def _failed(self, feed: FeedConfig, cursor: FeedCursor, error: str, retry_after: timedelta | None) -> FeedResult:
        failures = cursor.failures + 1
        wait = self.backoff(failures)
        if retry_after is not None:
            wait = min(max(wait, retry_after), self._backoff_max)
        log.warning("forum feed %s (%s) failed %d time(s): %s", feed.board, feed.url, failures, error)
        backed_off = replace(cursor, failures=failures, retry_at=self._now() + wait, last_error=error)
        return FeedResult(feed, PollStatus.FAILED, backed_off, error=error)


def _retry_after(value: str | None) -> timedelta | None:
    if value is None or not value.strip().isdigit():
        return None
    return timedelta(seconds=int(value.strip()))


def _is_new(post: ForumPost, cursor: FeedCursor) -> bool:
    if post.key in cursor.seen:
        return False
    return cursor.newest is None or post.published is None or post.published > cursor.newest - LOOKBACK


def decode_feed(body: bytes, content_type: str | None, override: str | None = None) -> str:
    """The feed's text, decoded by the first encoding that fits (see the module docstring for the order)."""
    declared = _PROLOG.match(body)
    candidates = [override, "utf-8", _charset(content_type), declared.group(1).decode("ascii") if declared else None,
                  "gb18030"]
    tried: list[str] = []
    for name in candidates:
        codec = _codec(name)
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            text = body.decode(codec)
        except UnicodeDecodeError:
            continue
        return text.removeprefix("\ufeff")
    raise FeedError(f"the feed decodes as none of {', '.join(tried)}")


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    if name.strip().lower() in _GBK_FAMILY:
        return "gb18030"
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def parse_feed(feed: FeedConfig, body: bytes, content_type: str | None) -> list[ForumPost]:
    """The posts of a fetched feed, in feed order; FeedError when the body is not a usable feed."""
    text = decode_feed(body, content_type, feed.encoding)
    stripped = text.lstrip()
    if not stripped.startswith("<"):
        snippet = " ".join(stripped.split())[:80]
        raise FeedError(f"not a feed: the forum answered plain text {snippet!r} (is RSS switched off?)")
    if _ENTITY_DECLARATION.search(text):
        raise FeedError("the feed declares XML entities; refused")
    document = _PROLOG_TEXT.sub("", text, count=1).encode("utf-8")
    parsed = feedparser.parse(document, response_headers={"content-type": "application/xml; charset=utf-8"},
                              sanitize_html=True, resolve_relative_uris=True)
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception")
        raise FeedError(f"not an RSS or Atom feed ({reason})" if reason else "not an RSS or Atom feed")
    host = (urlsplit(feed.url).hostname or "").lower()
    posts = []
    for entry in parsed.entries:
        post = _post(feed, host, entry)
        if post is not None:
            posts.append(post)
    return posts


def _post(feed: FeedConfig, feed_host: str, entry: Any) -> ForumPost | None:
    link = str(entry.get("link") or "").strip()
    title = clip(" ".join(str(entry.get("title") or "").split()), MAX_TITLE_CHARS)
    contents = entry.get("content") or []
    html = contents[0].get("value", "") if contents else str(entry.get("summary") or "")
    text = clip(html_to_text(html), MAX_TEXT_CHARS) or title
    if not text:
        return None
    tid = discuz_thread_id(link) if link else None
    guid = str(entry.get("id") or "").strip()
    if tid is not None:
        key = thread_key(urlsplit(link).hostname or feed_host, tid)
    elif guid:
        key = bounded_key(f"guid:{guid}")
    elif link:
        key = bounded_key(f"link:{link}")
    else:
        key = "hash:" + hashlib.sha256(f"{feed_host}\n{title}\n{text}".encode()).hexdigest()
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    published = datetime(*tuple(moment)[:6]).replace(tzinfo=UTC) if moment else None
    author = clip(" ".join(str(entry.get("author") or "").split()), 100)
    return ForumPost(board=feed.board, key=key, title=title, text=text, author=author, link=link,
                     published=published, thread_id=tid)
