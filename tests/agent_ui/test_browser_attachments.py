"""A ticket's attachments in a real browser: the citizen's photo shown inline, the voice message with a player, a
file that could not be kept with its reason, and the agent sending that file back to be fetched again."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from hotline.models import TicketAttachment
from tests.agent_ui.conftest import LiveServer
from tests.agent_ui.test_browser import Desk, db_url, dispatch, intake
from tests.conftest import City

pytestmark = pytest.mark.browser
__all__ = ["db_url"]  # the browser tests' fixture: a fresh SQLite file the server and the test share


def png(width: int, height: int) -> bytes:
    """A real PNG of one grey colour (the browser must decode it to give it a size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_the_unit_sees_the_citizens_photo_hears_the_voice_and_reads_why_a_file_is_missing(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    ticket = intake(live_server, city, "澄江街道建设路人行道被摊位占满，附照片和语音")
    dispatch(live_server, city, ticket["id"], "cjjd")
    photo = png(40, 30)
    now = datetime.now(UTC)
    with live_server.services.sessions.begin() as s:  # what the worker's fetch pass leaves (tested on its own)
        s.add_all([
            TicketAttachment(ticket_id=ticket["id"], channel="wechat", kind="image", source="media-1", state="stored",
                             content=photo, size=len(photo), content_type="image/png", created_at=now),
            TicketAttachment(ticket_id=ticket["id"], channel="wechat", kind="audio", source="media-2", state="stored",
                             content=b"ID3" + b"\x00" * 2000, size=2003, content_type="audio/mpeg", created_at=now),
            TicketAttachment(ticket_id=ticket["id"], channel="wechat", kind="image", source="media-3",
                             state="refused", reason="图片超过 10 MB 的大小上限，未保存", created_at=now),
        ])

    unit = Desk(browser, live_server, "cjjd")
    page = unit.page
    page.click(f"#unit-list li[data-id='{ticket['id']}'] button.item")
    page.wait_for_selector("#ticket section.attachments")
    page.wait_for_function(
        "() => { const img = document.querySelector('#ticket .attachments img.attachment-image');"
        " return img && img.complete && img.naturalWidth === 40; }")
    page.wait_for_selector("#ticket .attachments audio[controls][src^='blob:']", state="attached")
    assert page.get_attribute("#ticket .attachments img.attachment-image", "alt") == "市民发来的图片"
    refused = page.inner_text("#ticket .attachments li.refused")
    assert "未能保存" in refused and "原因：图片超过 10 MB 的大小上限，未保存" in refused
    assert page.locator("#ticket .attachments button.retry-attachment").count() == 0  # units do not retry
    assert page.locator("#ticket .attachments li.audio a:has-text('下载')").count() == 1
    unit.shot("ticket-attachments")
    unit.close()


def test_the_agent_sends_a_refused_photo_back_to_be_fetched_again(
    browser: Any, live_server: LiveServer, city: City
) -> None:
    ticket = intake(live_server, city, "长江路路灯不亮，附了照片")
    with live_server.services.sessions.begin() as s:
        row = TicketAttachment(ticket_id=ticket["id"], channel="wechat", kind="image", source="media-9",
                               state="refused", reason="图片多次获取失败，未保存", created_at=datetime.now(UTC))
        s.add(row)
        s.flush()
        row_id = row.id

    agent = Desk(browser, live_server, "agent")
    page = agent.page
    page.click(f"#queue-list li[data-id='{ticket['id']}'] button.item")
    page.click("#ticket .attachments li.refused button.retry-attachment")
    page.wait_for_selector("#ticket .attachments li.pending")
    item = page.inner_text("#ticket .attachments li.pending")
    assert "待获取" in item and "原因" not in item
    expect(page.locator("#toast")).to_contain_text("已重新排队获取附件")
    with live_server.services.sessions() as s:
        assert s.get_one(TicketAttachment, row_id).state == "pending"
    agent.close()
