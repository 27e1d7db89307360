"""``hotline forum simulate`` and ``hotline open311 simulate``: real, signed requests to a running server, the way a
forum plugin and a civic app send them, so a newcomer watches a post become a ticket on the desk.

Each builds its request with the channel's own protocol code (``channels.forum.push.signed_headers``, the
GeoReport form fields) from the settings in force (the demo board's secret, the first Open311 client's key) and
sends it with httpx; the answer is printed as JSON. The functions take an ``httpx.Client`` so the tests drive them
against the app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from channels.forum.push import signed_headers
from channels.forum.settings import ForumSettings
from channels.open311.settings import Open311Settings
from hotline.settings import load_settings

DEFAULT_SERVER = "http://127.0.0.1:8000"
FORUM_TEXT = "<p>澄江街道建设路88号门口的路灯坏了一个星期，晚上很黑，老人走路容易摔倒，希望尽快修好。</p>"
OPEN311_TEXT = "建设路与澄江路交叉口有人占道摆摊，早高峰堵住了人行道和盲道。"


def simulate_forum_post(http: httpx.Client, settings: ForumSettings, board: str, *, title: str, body: str,
                        thread_id: str) -> httpx.Response:
    known = settings.boards.get(board)
    if known is None or not known.secrets:
        raise ValueError(f"board {board!r} is not configured with a push secret (HOTLINE_FORUM_BOARDS)")
    post = {"thread_id": thread_id, "title": title, "body": body, "author": "模拟网友",
            "link": f"{str(known.site_url).split('?')[0]}?mod=viewthread&tid={thread_id}",
            "posted_at": datetime.now(UTC).isoformat()}
    content = json.dumps(post, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", **signed_headers(known.secrets[0], content, datetime.now(UTC))}
    return http.post(f"/channels/forum/{board}", content=content, headers=headers)


def simulate_open311_request(http: httpx.Client, settings: Open311Settings, *, service_code: str | None,
                             description: str, address: str) -> httpx.Response:
    if not settings.keys:
        raise ValueError("no Open311 client is configured (HOTLINE_OPEN311_KEYS)")
    key = next(iter(settings.keys.values()))
    if service_code is None:
        services = http.get("/open311/v2/services.json").json()
        if not services:
            raise ValueError("the server offers no Open311 services (no categories)")
        service_code = str(services[0]["service_code"])
    form = {"api_key": key, "service_code": service_code, "description": description, "address_string": address}
    return http.post("/open311/v2/requests.json", data=form)


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
