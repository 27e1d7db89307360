"""A ticket's attachments in a real browser: the citizen's photo shown inline, the voice message with a player, a
file that could not be kept with its reason."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

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
    assert page.locator("#ticket .attachments li.audio a:has-text('下载')").count() == 1
    unit.shot("ticket-attachments")
    unit.close()
