"""The desk in a real browser takes its working day and its labels from the server (GET /api/desk/config): with
HOTLINE_OFFICE_HOURS set to a four-hour day, a unit's countdown counts four-hour working days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline import labels
from hotline.services import Services
from hotline.timing import Timing
from tests.agent_ui.conftest import DeskSuggester, LiveServer, add_article, serve
from tests.agent_ui.test_browser import Desk, api, db_url, dispatch, intake
from tests.conftest import City

pytestmark = pytest.mark.browser
__all__ = ["db_url"]  # the browser tests' fixture: a fresh SQLite file the server and the test share


def four_hours_away_from_now(zone: str) -> str:
    """A four-hour office day that does not contain the present moment (nor the next hour): the countdowns of the
    test stand still, so the text on the page can be compared with the server's figure exactly."""
    hour = datetime.now(ZoneInfo(zone)).hour
    return "14:00-18:00" if hour < 12 else "01:00-05:00"


def working_span(seconds: float, day: int) -> str:
    """The desk's wording of a working-time span of a day of ``day`` seconds (time.js ``fmtSpan``)."""
    s = abs(round(seconds))
    days, rest = divmod(s, day)
    hours, minutes = rest // 3600, (rest % 3600) // 60
    if days:
        return f"{days}个工作日{hours}小时"
    return f"{hours}小时{minutes:02d}分" if hours else f"{minutes}分{rest % 60:02d}秒"


@pytest.fixture
def four_hour_server(
    services: Services, city: City, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    zone = services.settings.city_timezone
    monkeypatch.setenv("HOTLINE_OFFICE_HOURS", four_hours_away_from_now(zone))
    services.timing = Timing.from_database(services.sessions, zone)  # the production path reads the setting
    services.suggester = DeskSuggester(city, add_article(services))
    with serve(services) as server:
        yield server


def test_a_countdown_counts_the_servers_working_day(
    browser: Any, four_hour_server: LiveServer, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = four_hour_server
    config = api(server, city, "cjjd", "GET", "/api/desk/config")
    assert config["office_hours"]["day_seconds"] == 4 * 3600
    # a label the desk can only know from the server
    monkeypatch.setitem(labels.KIND_LABELS, "complaint", "投诉件")

    ticket = intake(server, city, "澄江街道建设路早市摊贩占道经营，人行道无法通行")
    dispatch(server, city, ticket["id"], "cjjd")
    left = api(server, city, "cjjd", "GET", f"/api/desk/deadlines?ids={ticket['id']}")["tickets"][str(ticket["id"])]
    expected = working_span(left["reply_left_s"], 4 * 3600)
    assert "个工作日" in expected and expected != working_span(left["reply_left_s"], 27000)  # not a 7.5-hour day

    unit = Desk(browser, server, "cjjd")
    page = unit.page
    card = f"#unit-list li[data-id='{ticket['id']}']"
    page.wait_for_selector(card)
    assert page.inner_text(f"{card} [data-role=countdown]") == f"剩余工作时间 {expected}"
    assert "投诉件" in page.inner_text(f"{card} .line3")
    page.click(f"{card} button.item")
    page.wait_for_selector("#ticket [data-role=detail-countdown]")
    assert page.inner_text("#ticket [data-role=detail-countdown]") == f"剩余工作时间 {expected}"
    assert page.inner_text("#ticket .ticket-head .badges").endswith("投诉件")
    unit.shot("unit-four-hour-day")
    unit.close()
