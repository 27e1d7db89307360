"""The simulators send the same signed requests a forum plugin and a civic app send: they make tickets."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from channels.simulate import FORUM_TEXT, OPEN311_TEXT, simulate_forum_post, simulate_open311_request
from hotline.models import Ticket
from hotline.services import Services
from hotline.worker import process_inbound_once
from tests.conftest import City


def test_the_simulated_forum_post_and_open311_request_become_tickets(
    client: TestClient, city: City, services: Services
) -> None:
    settings = services.settings
    pushed = simulate_forum_post(client, settings.forum, "wenzheng", title="建设路路灯坏了", body=FORUM_TEXT,
                                 thread_id="4242")
    assert pushed.status_code == 202, pushed.text
    posted = simulate_open311_request(client, settings.open311, service_code=None, description=OPEN311_TEXT,
                                      address="澄江街道建设路")
    assert posted.status_code == 201, posted.text
    process_inbound_once(services)
    with services.sessions() as s:
        made = {(t.channel, t.title) for t in s.scalars(select(Ticket))}
    assert made == {("forum", "建设路路灯坏了"), ("open311", "城乡建设")}
