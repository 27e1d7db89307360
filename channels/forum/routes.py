"""The forum's HTTP side under ``/channels/forum/``, over functions the caller passes in (``ForumBackend``).

- ``POST /channels/forum/{board}``: a pushed post (``channels.forum.push``): 403 unless signed with the board's
  secret inside the window (an unknown board is 403 too: no board names are revealed), 413 over the size limit,
  415 unless ``application/json``, 422 for an invalid post; otherwise 202 ``{"accepted": true, "duplicate": ...}``.
- ``GET /channels/forum/{board}/replies.json`` and ``replies.rss``: the replies waiting to be posted
  (``channels.forum.replies``); 404 for an unknown board.
- ``POST /channels/forum/{board}/replies/posted``: a signed ``RepliesPosted``; 200 ``{"marked": n}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from channels.forum.push import MAX_PUSH_BYTES, PushedPost, PushInvalid, PushRefused, parse_post, verify
from channels.forum.replies import OfficialReply, RepliesPosted, replies_json, replies_rss
from channels.forum.settings import ForumSettings

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ForumBackend:
    """What the router needs from the hotline; every function is called in a worker thread."""

    accept: Callable[[str, PushedPost], bool]  # (board, post) → True when it was a duplicate
    pending_replies: Callable[[str], Sequence[OfficialReply]]  # board → replies to post, oldest first
    mark_posted: Callable[[str, RepliesPosted], int]  # (board, marks) → how many replies were marked
    now: Callable[[], datetime] = _utc_now
    #: (limit name, client) → None when allowed, else the seconds to wait; signed pushes are limited per board
    throttle: Callable[[str, str], int | None] = lambda _name, _client: None


async def _signed_body(request: Request, board: str, settings: ForumSettings, now: datetime) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PUSH_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_PUSH_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PUSH_BYTES:
            raise HTTPException(413, f"the body is larger than {MAX_PUSH_BYTES} bytes")
    known = settings.boards.get(board)
    try:
        verify(known.secrets if known else (), request.headers, bytes(body), now)
    except PushRefused as refused:
        log.warning("forum push to board %r refused: %s", board[:40], refused)
        raise HTTPException(403, "signature refused") from None
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "Content-Type must be application/json")
    return bytes(body)


def forum_router(backend: ForumBackend, settings: ForumSettings) -> APIRouter:
    router = APIRouter(prefix="/channels/forum", tags=["forum"])

    @router.post("/{board}", status_code=202)
    async def push(board: str, request: Request) -> JSONResponse:
        body = await _signed_body(request, board, settings, backend.now())
        wait = await run_in_threadpool(backend.throttle, "forum_board", board)
        if wait:
            return JSONResponse({"detail": f"该版块推送过于频繁，请 {wait} 秒后重试",
                                 "message": f"too many pushes for board {board}; retry in {wait} s"},
                                status_code=429, headers={"Retry-After": str(wait)})
        try:
            post = parse_post(body)
        except PushInvalid as invalid:
            return JSONResponse({"detail": str(invalid), "errors": invalid.errors}, status_code=422)
        duplicate = await run_in_threadpool(backend.accept, board, post)
        return JSONResponse({"accepted": True, "duplicate": duplicate, "key": post.key}, status_code=202)

    @router.get("/{board}/replies.json")
    def replies_as_json(board: str) -> JSONResponse:
        if board not in settings.boards:
            raise HTTPException(404, "no such board")
        return JSONResponse(replies_json(board, backend.pending_replies(board)))

    @router.get("/{board}/replies.rss")
    def replies_as_rss(board: str, request: Request) -> Response:
        known = settings.boards.get(board)
        if known is None:
            raise HTTPException(404, "no such board")
        rss = replies_rss(known.title, str(request.url.replace(query="")), str(known.site_url),
                          backend.pending_replies(board))
        return Response(rss, media_type="application/rss+xml; charset=utf-8")

    @router.post("/{board}/replies/posted")
    async def mark_posted(board: str, request: Request) -> JSONResponse:
        body = await _signed_body(request, board, settings, backend.now())
        try:
            marks = RepliesPosted.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            return JSONResponse({"detail": "not a valid list of posted replies", "errors": list(errors)},
                                status_code=422)
        marked = await run_in_threadpool(backend.mark_posted, board, marks)
        return JSONResponse({"marked": marked})

    return router
