"""A fake WeChat API: a real HTTP server on 127.0.0.1 (Starlette under uvicorn, in a thread) that records requests.

It behaves like the parts of api.weixin.qq.com the hotline uses, strictly: fetching a token invalidates every
earlier token at once (WeChat allows a few minutes' grace; strict is the harder case), every call checks its
token (40001), a customer-service message to a citizen who has not written within 48 hours fails with 45015, and
media/get serves the files a test gives it (``serve_media``) and answers errors, such as 40007 for an unknown
media_id, as text/plain JSON, like the real one.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WINDOW_SECONDS = 48 * 3600


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeWeChat:
    appid: str = "wx1234567890abcdef"
    secret: str = "fake-app-secret"
    token_delay_seconds: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    last_wrote: dict[str, float] = field(default_factory=dict)
    unfollowed: set[str] = field(default_factory=set)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    chunked_media: set[str] = field(default_factory=set)
    fail_next: dict[str, list[int]] = field(default_factory=dict)
    base_url: str = ""
    #: every citizen counts as having written just now (the demo: customer-service messages always go through)
    window_open: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.token_delay_seconds = 0.0
            self.requests.clear()
            self.tokens_issued.clear()
            self.valid_tokens.clear()
            self.last_wrote.clear()
            self.unfollowed.clear()
            self.media.clear()
            self.chunked_media.clear()
            self.fail_next.clear()

    # -- what the tests arrange and read ---------------------------------------------------------------------

    def citizen_wrote(self, openid: str, at: float | None = None) -> None:
        self.last_wrote[openid] = time.time() if at is None else at

    def revoke_tokens(self) -> None:
        with self._lock:
            self.valid_tokens.clear()

    def fail(self, path: str, *errcodes: int) -> None:
        """The next calls to ``path`` answer these errcodes, one per call."""
        self.fail_next.setdefault(path, []).extend(errcodes)

    def serve_media(self, media_id: str, content: bytes, content_type: str, *, chunked: bool = False) -> None:
        """``/cgi-bin/media/get`` answers this file for ``media_id`` (``chunked``: streamed without a
        Content-Length, so only reading tells its size)."""
        with self._lock:
            self.media[media_id] = (content, content_type)
            if chunked:
                self.chunked_media.add(media_id)
            else:
                self.chunked_media.discard(media_id)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # -- the API ---------------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/cgi-bin/token", self._token, methods=["GET"]),
            Route("/cgi-bin/message/custom/send", self._custom_send, methods=["POST"]),
            Route("/cgi-bin/message/template/send", self._template_send, methods=["POST"]),
            Route("/cgi-bin/message/subscribe/bizsend", self._subscription_send, methods=["POST"]),
            Route("/cgi-bin/menu/create", self._ok, methods=["POST"]),
            Route("/cgi-bin/media/get", self._media_get, methods=["GET"]),
        ])

    async def _record(self, request: Request) -> Recorded:
        recorded = Recorded(request.method, request.url.path, dict(request.query_params), await request.body())
        with self._lock:
            self.requests.append(recorded)
        return recorded

    def _injected(self, path: str) -> JSONResponse | None:
        with self._lock:
            queue = self.fail_next.get(path)
            code = queue.pop(0) if queue else None
        return None if code is None else _error(code, "injected by the test")

    def _token_error(self, recorded: Recorded) -> JSONResponse | None:
        if recorded.query.get("access_token") not in self.valid_tokens:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        return self._injected(recorded.path)

    async def _token(self, request: Request) -> Response:
        recorded = await self._record(request)
        q = recorded.query
        if q.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        if q.get("appid") != self.appid:
            return _error(40013, "invalid appid")
        if q.get("secret") != self.secret:
            return _error(40125, "invalid appsecret")
        if self.token_delay_seconds:
            await asyncio.sleep(self.token_delay_seconds)  # long enough for two refreshers to overlap
        with self._lock:
            token = f"token-{len(self.tokens_issued) + 1}"
            self.tokens_issued.append(token)
            self.valid_tokens = {token}
        return JSONResponse({"access_token": token, "expires_in": 7200})

    async def _custom_send(self, request: Request) -> Response:
        recorded = await self._record(request)
        if (refused := self._token_error(recorded)) is not None:
            return refused
        body = recorded.json()
        openid = body.get("touser", "")
        if openid in self.unfollowed:
            return _error(43004, "require subscribe")
        if not self.window_open and time.time() - self.last_wrote.get(openid, 0.0) > WINDOW_SECONDS:
            return _error(45015, "response out of time limit or subscription is canceled")
        if body.get("msgtype") != "text" or not body.get("text", {}).get("content"):
            return _error(44003, "empty news data")
        await self._custom_log(recorded)
        return _error(0, "ok")

    async def _custom_log(self, recorded: Recorded) -> None:
        if self.window_open:  # the demo: show what the citizen would read
            body = recorded.json()
            print(f"[fake WeChat] to {body.get('touser')}: {body.get('text', {}).get('content')}", flush=True)

    async def _template_send(self, request: Request) -> Response:
        recorded = await self._record(request)
        if (refused := self._token_error(recorded)) is not None:
            return refused
        body = recorded.json()
        if body.get("touser") in self.unfollowed:
            return _error(43004, "require subscribe")
        if not body.get("template_id"):
            return _error(40037, "invalid template_id")
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": 1000 + len(self.requests)})

    async def _subscription_send(self, request: Request) -> Response:
        recorded = await self._record(request)
        if (refused := self._token_error(recorded)) is not None:
            return refused
        return _error(0, "ok")

    async def _ok(self, request: Request) -> Response:
        recorded = await self._record(request)
        return self._token_error(recorded) or _error(0, "ok")

    async def _media_get(self, request: Request) -> Response:
        recorded = await self._record(request)
        if (refused := self._token_error(recorded)) is not None:
            return Response(refused.body, media_type="text/plain")
        media_id = recorded.query.get("media_id", "")
        if media_id not in self.media:
            return Response(json.dumps({"errcode": 40007, "errmsg": "invalid media_id"}), media_type="text/plain")
        content, content_type = self.media[media_id]
        extension = content_type.split("/")[-1]
        headers = {"Content-Disposition": f'attachment; filename="{media_id}.{extension}"'}
        if media_id in self.chunked_media:
            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(content), 64 * 1024):
                    yield content[start:start + 64 * 1024]

            return StreamingResponse(chunks(), media_type=content_type, headers=headers)
        return Response(content, media_type=content_type, headers=headers)


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"errcode": code, "errmsg": message})


@contextmanager
def running(fake: FakeWeChat) -> Iterator[FakeWeChat]:
    """Serve ``fake`` on a free port of 127.0.0.1 until the block ends; ``fake.base_url`` points at it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake WeChat API did not start")
        time.sleep(0.02)
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main() -> None:
    """``python -m tests.fakes.wechat_api --port 8765``: the fake for ``make run`` (the demo account's AppID and
    AppSecret; every citizen inside the 48-hour window; what the citizen would read is printed)."""
    import argparse

    from wechat_bot.settings import DEMO_APPID, DEMO_SECRET

    parser = argparse.ArgumentParser(description="a fake WeChat API on 127.0.0.1 for the demo")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    fake = FakeWeChat(appid=DEMO_APPID, secret=DEMO_SECRET, window_open=True)
    uvicorn.run(fake.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
