"""A fake city forum: a real HTTP server on 127.0.0.1 serving feeds the test crafts, the way Discuz! serves them.

``FakeForum.serve(path, page)`` puts a page at a path (path and query, e.g. ``/forum.php?mod=rss&fid=2``);
the server answers 304 when the client's If-None-Match / If-Modified-Since matches the page's validators, 404 for
unknown paths, and records every request. ``discuz_rss`` builds a feed like Discuz!'s ``forum.php?mod=rss``:
no guid, HTML in CDATA, encoded in GBK unless told otherwise.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


@dataclass
class Page:
    body: bytes
    content_type: str = "text/xml"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # answer this late (to exceed a client's timeout)
    hang_up: bool = False  # close the connection without an answer


@dataclass(frozen=True)
class Thread:
    tid: int
    title: str
    html: str
    author: str
    posted: datetime
    link_form: str = "forum.php"  # "forum.php" | "viewthread.php" | "static"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FakeForum:
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        forum = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with forum._lock:
                    forum.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                    page = forum.pages.get(self.path)
                if page is None:
                    self._answer(404, {"Content-Type": "text/plain"}, b"Not Found")
                    return
                if page.delay_seconds:
                    time.sleep(page.delay_seconds)
                if page.hang_up:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                validators = {}
                if page.etag:
                    validators["ETag"] = page.etag
                if page.last_modified:
                    validators["Last-Modified"] = page.last_modified
                if (page.etag and self.headers.get("If-None-Match") == page.etag) or (
                    page.last_modified and self.headers.get("If-Modified-Since") == page.last_modified
                ):
                    self._answer(304, validators, b"")
                    return
                self._answer(page.status, {"Content-Type": page.content_type, **validators, **page.headers},
                             page.body)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                        self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def serve(self, path: str, page: Page) -> str:
        with self._lock:
            self.pages[path] = page
        return self.url(path)

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def running_forum() -> Iterator[FakeForum]:
    forum = FakeForum()
    forum.start()
    try:
        yield forum
    finally:
        forum.stop()


def thread_link(base: str, thread: Thread) -> str:
    if thread.link_form == "static":
        return f"{base}/thread-{thread.tid}-1-1.html"
    if thread.link_form == "viewthread.php":
        return f"{base}/viewthread.php?tid={thread.tid}"
    return f"{base}/forum.php?mod=viewthread&tid={thread.tid}"


def discuz_rss(base: str, threads: Sequence[Thread], *, board: str = "网络问政", site: str = "市民论坛",
               encoding: str = "gbk", declare: str | None = "gbk") -> bytes:
    """A Discuz!-style board feed: no guid, HTML description in CDATA; ``declare`` goes in the XML prolog."""
    prolog = f'<?xml version="1.0" encoding="{declare}"?>' if declare else '<?xml version="1.0"?>'
    items = "".join(
        "<item>"
        f"<title>{escape(t.title)}</title>"
        f"<link>{escape(thread_link(base, t))}</link>"
        f"<description><![CDATA[{t.html}]]></description>"
        f"<category>{escape(board)}</category>"
        f"<author>{escape(t.author)}</author>"
        f"<pubDate>{format_datetime(t.posted)}</pubDate>"
        "</item>"
        for t in threads
    )
    document = (
        f"{prolog}\n<rss version=\"2.0\"><channel>"
        f"<title>{escape(site)} - {escape(board)}</title>"
        f"<link>{escape(base)}/forum.php?mod=forumdisplay&amp;fid=2</link>"
        f"<description>Latest 20 threads of {escape(board)}</description>"
        f"<copyright>Copyright(C) {escape(site)}</copyright>"
        "<generator>Discuz! Board by Comsenz Inc.</generator>"
        "<ttl>60</ttl>"
        f"{items}</channel></rss>"
    )
    return document.encode(encoding)


def atom_feed(entries: Sequence[tuple[str, str, str, datetime]]) -> bytes:
    """A small UTF-8 Atom feed of (id, title, link, updated) entries, for a forum that is not Discuz!."""
    body = "".join(
        f"<entry><id>{escape(i)}</id><title>{escape(title)}</title><link href=\"{escape(link)}\"/>"
        f"<updated>{updated.isoformat()}</updated><author><name>李四</name></author>"
        f"<content type=\"html\">{escape('<p>' + title + '，请尽快处理。</p>')}</content></entry>"
        for i, title, link, updated in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>问政频道</title><id>urn:forum:board</id><updated>2025-03-03T10:00:00Z</updated>"
        f"{body}</feed>"
    ).encode()
