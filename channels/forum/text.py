"""Small text helpers shared by the forum's feed poller and push webhook: thread keys and HTML to plain text."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

MAX_KEY_CHARS = 200
_STATIC_THREAD = re.compile(r"(?:^|/)thread-(\d{1,12})-\d+-\d+\.html$")  # Discuz! rewrite: thread-123-1-1.html
_ARCHIVER_THREAD = re.compile(r"(?:^|/)tid-(\d{1,12})\.html$")  # Discuz! archiver: archiver/tid-123.html
_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "tr", "table", "blockquote", "pre", "hr",
                         "h1", "h2", "h3", "h4", "h5", "h6"})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")


def discuz_thread_id(link: str) -> str | None:
    """The thread id (tid) of a Discuz! thread link, in any of its usual forms; None for other links.

    ``thread-123-1-1.html``, ``viewthread.php?tid=123``, ``forum.php?mod=viewthread&tid=123`` and
    ``archiver/tid-123.html`` all name thread 123.
    """
    parts = urlsplit(link.strip())
    for pattern in (_STATIC_THREAD, _ARCHIVER_THREAD):
        match = pattern.search(parts.path)
        if match:
            return match.group(1)
    query = parse_qs(parts.query)
    tids = query.get("tid", [])
    if not tids or not tids[0].isdigit() or len(tids[0]) > 12:
        return None
    if parts.path.endswith("/viewthread.php") or parts.path == "viewthread.php":
        return tids[0]
    if (parts.path.endswith("/forum.php") or parts.path == "forum.php") and query.get("mod") == ["viewthread"]:
        return tids[0]
    return None


def thread_key(host: str, thread_id: str) -> str:
    """The external id of a forum thread: the same whether the thread came from the feed or the push webhook."""
    return bounded_key(f"{host.lower()}/thread/{thread_id}")


def bounded_key(key: str) -> str:
    """Keys longer than MAX_KEY_CHARS keep a readable head and end in the SHA-256 of the whole key."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[: MAX_KEY_CHARS - len(digest) - 1]}#{digest}"


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, one line per block, blank runs collapsed."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(extractor.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at the limit (the intake refuses longer texts outright)."""
    return text if len(text) <= limit else text[:limit].rstrip()
