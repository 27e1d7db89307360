"""The phone queue in the browser: a simulated call (signed like Twilio, ``hotline phone simulate``'s code) shows
its screen-pop on an agent desk that is already open, and 接听下一个 opens the draft ticket and has the fake Twilio
put the call through to the agent's device."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.phone.simulate import SimulatedCall
from hotline.models import User
from hotline.services import Services
from hotline.worker import process_inbound_once
from tests.agent_ui.conftest import LiveServer
from tests.agent_ui.test_browser import Desk, db_url  # noqa: F401  (a fresh SQLite file the server shares)
from tests.channels.phone.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE, phone_services
from tests.conftest import City
from tests.fakes.twilio_api import FakeTwilioApi

SAID = "澄江街道幸福小区门口的路灯坏了一个星期了"
CALLER = "+8613812345678"
DEVICE = "+8657188880001"


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN).running() as fake:
        yield fake


@pytest.fixture
def services(db_url: str, tmp_path: Path, fake_twilio: FakeTwilioApi) -> Iterator[Services]:  # noqa: F811
    services = phone_services(db_url, tmp_path, fake_twilio)
    yield services
    services.engine.dispose()


def test_a_simulated_call_pops_up_on_the_open_agent_desk_and_take_next_opens_its_draft(
    browser: Any, live_server: LiveServer, city: City, services: Services, fake_twilio: FakeTwilioApi
) -> None:
    with services.sessions() as s:
        agent_user = s.get(User, city.ids["user:agent"])
        assert agent_user is not None
        agent_user.phone_device = DEVICE
        s.commit()
    agent = Desk(browser, live_server, "agent")
    page = agent.page
    page.wait_for_selector("#phone-queue:not([hidden]) #pq-list li.empty")
    agent.mark()

    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        call = SimulatedCall(services.settings.phone, CALLER, http, say_line=lambda _line: None)
        call.run("1", SAID, hang_up_in_queue=False)
    fake_twilio.inbound_call(call.call_sid, CALLER, HOTLINE)
    process_inbound_once(services)  # the worker makes the draft ticket from the transcript
    started = time.monotonic()
    page.wait_for_selector(f"#pq-list li.pq-call:has-text('{SAID}')", timeout=1_000)
    assert time.monotonic() - started < 1.0
    shown = page.inner_text("#pq-list")
    assert "13812345678" in shown and page.inner_text("#pq-count") == "1"  # an agent sees the full number
    assert agent.not_reloaded()

    page.click("#pq-next")
    page.wait_for_selector(f"#ticket:has-text('{SAID}')")
    page.wait_for_selector("#pq-held:not([hidden]) button.pq-three-party")
    page.wait_for_selector("#pq-list li.empty")
    [update] = [r for r in fake_twilio.requests_to(f"Calls/{call.call_sid}.json") if r.method == "POST"]
    number = ET.fromstring(update.field("Twiml") or "").find("Dial/Number")
    assert number is not None and number.text == DEVICE
    agent.close()
