"""``hotline forum simulate`` and ``hotline open311 simulate``: real, signed requests to a running server, the way a
forum plugin and a civic app send them, so a newcomer watches a post become a ticket on the desk.

Each builds its request with the channel's own protocol code (``channels.forum.push.signed_headers``, the
GeoReport form fields) from the settings in force (the demo board's secret, the first Open311 client's key) and
sends it with httpx; the answer is printed as JSON. The functions take an ``httpx.Client`` so the tests drive them
against the app. ``ForumProbe`` and ``Open311Probe`` send the same requests for the admin desk's 测试 buttons
(``hotline.channel_probes``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from channels.forum.backend import external_id as forum_external_id
from channels.forum.push import PushedPost, signed_headers
from channels.forum.settings import DEMO_FORUM_SECRET, Board, ForumSettings
from channels.open311.settings import DEMO_OPEN311_KEYS, Open311Settings
from hotline.channel_probes import (
    Address,
    ChannelStatus,
    ProbeRequest,
    ProbeResult,
    SettingInfo,
    SettingState,
    public_url,
)
from hotline.settings import load_settings

DEFAULT_SERVER = "http://127.0.0.1:8000"
FORUM_TEXT = "<p>澄江街道建设路88号门口的路灯坏了一个星期，晚上很黑，老人走路容易摔倒，希望尽快修好。</p>"
OPEN311_TEXT = "建设路与澄江路交叉口有人占道摆摊，早高峰堵住了人行道和盲道。"


def _push_board(settings: ForumSettings, board: str) -> Board:
    known = settings.boards.get(board)
    if known is None or not known.secrets:
        raise ValueError(f"board {board!r} is not configured with a push secret (HOTLINE_FORUM_BOARDS)")
    return known


def forum_post(settings: ForumSettings, board: str, *, title: str, body: str, thread_id: str,
               author: str = "模拟网友") -> dict[str, str]:
    """A new thread as a forum plugin pushes it (a Discuz! viewthread link on the board's site)."""
    known = _push_board(settings, board)
    return {"thread_id": thread_id, "title": title, "body": body, "author": author,
            "link": f"{str(known.site_url).split('?')[0]}?mod=viewthread&tid={thread_id}",
            "posted_at": datetime.now(UTC).isoformat()}


def send_forum_post(http: httpx.Client, settings: ForumSettings, board: str, post: dict[str, str]) -> httpx.Response:
    """Push ``post`` to ``/channels/forum/{board}``, signed with the board's first secret."""
    content = json.dumps(post, ensure_ascii=False).encode("utf-8")
    secret = _push_board(settings, board).secrets[0]
    headers = {"Content-Type": "application/json", **signed_headers(secret, content, datetime.now(UTC))}
    return http.post(f"/channels/forum/{board}", content=content, headers=headers)


def simulate_forum_post(http: httpx.Client, settings: ForumSettings, board: str, *, title: str, body: str,
                        thread_id: str) -> httpx.Response:
    return send_forum_post(http, settings, board, forum_post(settings, board, title=title, body=body,
                                                             thread_id=thread_id))


def simulate_open311_request(http: httpx.Client, settings: Open311Settings, *, service_code: str | None,
                             description: str, address: str) -> httpx.Response:
    """POST a service request with the first configured client's key (``first_client``)."""
    key = settings.keys[first_client(settings)]
    if service_code is None:
        services = http.get("/open311/v2/services.json").json()
        if not services:
            raise ValueError("the server offers no Open311 services (no categories)")
        service_code = str(services[0]["service_code"])
    form = {"api_key": key, "service_code": service_code, "description": description, "address_string": address}
    return http.post("/open311/v2/requests.json", data=form)


def first_client(settings: Open311Settings) -> str:
    if not settings.keys:
        raise ValueError("no Open311 client is configured (HOTLINE_OPEN311_KEYS)")
    return next(iter(settings.keys))


class ForumProbe:
    """The channels tab's view of the forum (``hotline.channel_probes``): per board the push webhook, the reply
    feeds and the "posted" URL to give the forum's plugin, the boards configured (never their secrets), and a test
    thread pushed to the first board with a push secret, signed as the plugin signs it."""

    channel = "forum"
    label = "网络问政论坛"

    def __init__(self, settings: ForumSettings) -> None:
        self.settings = settings

    def status(self, public_base_url: str) -> ChannelStatus:
        boards = self.settings.boards
        addresses: list[Address] = []
        for slug, board in boards.items():
            base = public_url(public_base_url, f"/channels/forum/{slug}")
            addresses += [Address(f"{board.title}：新帖推送（POST，HMAC 签名）", base),
                          Address(f"{board.title}：待发布的答复（JSON / RSS）", f"{base}/replies.json"),
                          Address(f"{board.title}：答复已发布回执（POST）", f"{base}/replies/posted")]
            if board.feed_url is not None:
                addresses.append(Address(f"{board.title}：定时读取的帖子源", str(board.feed_url)))
        demo = any(DEMO_FORUM_SECRET in board.secrets for board in boards.values())
        shown = "、".join(f"{slug}（{board.title}）" for slug, board in boards.items())
        state: SettingState = "unset" if not boards else ("demo" if demo else "set")
        return ChannelStatus(enabled=bool(boards), addresses=tuple(addresses),
                             settings=(SettingInfo("HOTLINE_FORUM_BOARDS", state, shown or None),),
                             note="" if boards else "没有配置论坛版块（HOTLINE_FORUM_BOARDS）")

    def test(self, server_url: str, request: ProbeRequest) -> ProbeResult:
        board = next((slug for slug, b in self.settings.boards.items() if b.secrets), None)
        if board is None:
            return ProbeResult(False, None, error="没有可推送的论坛版块（HOTLINE_FORUM_BOARDS 中需有签名密钥）")
        post = forum_post(self.settings, board, title=request.text[:40], body=request.text,
                          thread_id=f"admin-test-{time.time_ns()}", author=request.sender or "模拟网友")
        if request.place:
            post["place"] = request.place
        try:
            with httpx.Client(base_url=server_url, timeout=15.0) as http:
                response = send_forum_post(http, self.settings, board, post)
        except httpx.HTTPError as exc:
            return ProbeResult(False, None, error=f"论坛推送地址无法访问：{exc}")
        step = f"POST /channels/forum/{board} → {response.status_code}"
        if response.status_code != 202:
            return ProbeResult(False, response.status_code, error=f"论坛推送被拒绝：{_answer_text(response)}",
                               steps=[step])
        key = forum_external_id(PushedPost.model_validate(post).key)
        return ProbeResult(True, 202, reply=_answer_text(response), external_id=key, steps=[step])


class Open311Probe:
    """The channels tab's view of Open311 GeoReport v2: the endpoint and discovery document to give civic apps,
    the clients that hold keys (never the keys), and a test service request with the first client's key."""

    channel = "open311"
    label = "Open311"

    def __init__(self, settings: Open311Settings) -> None:
        self.settings = settings

    def status(self, public_base_url: str) -> ChannelStatus:
        keys = self.settings.keys
        demo = any(DEMO_OPEN311_KEYS.get(client) == key for client, key in keys.items())
        state: SettingState = "unset" if not keys else ("demo" if demo else "set")
        return ChannelStatus(
            enabled=bool(keys),
            addresses=(Address("接口地址（endpoint，给 Open311 客户端）", public_url(public_base_url, "/open311/v2/")),
                       Address("服务发现（discovery）", public_url(public_base_url, "/open311/v2/discovery.json"))),
            settings=(SettingInfo("HOTLINE_OPEN311_KEYS", state, "、".join(keys) or None),),
            note="" if keys else "没有配置 Open311 客户端（HOTLINE_OPEN311_KEYS）：只能查询，不能提交")

    def test(self, server_url: str, request: ProbeRequest) -> ProbeResult:
        if not self.settings.keys:
            return ProbeResult(False, None, error="没有配置 Open311 客户端（HOTLINE_OPEN311_KEYS）")
        client = first_client(self.settings)
        try:
            with httpx.Client(base_url=server_url, timeout=15.0) as http:
                response = simulate_open311_request(http, self.settings, service_code=None, description=request.text,
                                                    address=request.place or "管理员渠道测试")
        except ValueError as exc:
            return ProbeResult(False, None, error=f"Open311 测试无法进行：{exc}")
        except httpx.HTTPError as exc:
            return ProbeResult(False, None, error=f"Open311 接口无法访问：{exc}")
        step = f"POST /open311/v2/requests.json（客户端 {client}）→ {response.status_code}"
        if not response.is_success:
            return ProbeResult(False, response.status_code, error=f"Open311 请求被拒绝：{_answer_text(response)}",
                               steps=[step])
        token = str(response.json()[0].get("token", ""))
        return ProbeResult(True, response.status_code, reply=f"token {token}", external_id=f"{client}:{token}",
                           steps=[step])


def _answer_text(response: httpx.Response) -> str:
    return response.text[:300]


def _print(response: httpx.Response) -> int:
    try:
        shown: Any = response.json()
    except ValueError:
        shown = response.text
    print(json.dumps({"status": response.status_code, "answer": shown}, ensure_ascii=False))
    return 0 if response.is_success else 1


def _cmd_forum(args: argparse.Namespace) -> int:
    try:
        with httpx.Client(base_url=args.server, timeout=10) as http:
            return _print(simulate_forum_post(http, load_settings().forum, args.board, title=args.title, body=args.text,
                                              thread_id=args.thread_id or str(int(time.time()))))
    except (ValueError, httpx.HTTPError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2


def _cmd_open311(args: argparse.Namespace) -> int:
    try:
        with httpx.Client(base_url=args.server, timeout=10) as http:
            return _print(simulate_open311_request(http, load_settings().open311, service_code=args.service_code,
                                                   description=args.text, address=args.address))
    except (ValueError, httpx.HTTPError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2


def add_commands(subparsers: Any) -> None:
    """Register ``forum simulate`` and ``open311 simulate`` on an ``argparse`` subparsers object."""
    forum = subparsers.add_parser("forum", help="the city forum channel").add_subparsers(dest="forum_command",
                                                                                         required=True)
    p = forum.add_parser("simulate", help="push a signed forum post to a running server")
    p.add_argument("--server", default=DEFAULT_SERVER)
    p.add_argument("--board", default="wenzheng")
    p.add_argument("--title", default="建设路路灯坏了一个星期")
    p.add_argument("--text", default=FORUM_TEXT)
    p.add_argument("--thread-id", help="the thread id (default: a new one from the clock)")
    p.set_defaults(func=_cmd_forum)
    open311 = subparsers.add_parser("open311", help="the Open311 GeoReport v2 channel").add_subparsers(
        dest="open311_command", required=True)
    p = open311.add_parser("simulate", help="POST a service request to a running server with the first API key")
    p.add_argument("--server", default=DEFAULT_SERVER)
    p.add_argument("--service-code", help="default: the first service the server lists")
    p.add_argument("--text", default=OPEN311_TEXT)
    p.add_argument("--address", default="澄江街道建设路")
    p.set_defaults(func=_cmd_open311)
