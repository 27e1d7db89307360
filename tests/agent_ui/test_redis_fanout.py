"""Two API workers (two app instances) sharing a real Redis: an event committed on one reaches the desks
connected to the other, still filtered per unit; presence is shared through Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
import redis
from fastapi.testclient import TestClient

from hotline.app import create_app
from hotline.db import make_engine, make_sessionmaker
from hotline.events import RedisBus
from hotline.services import Services
from hotline.settings import Settings
from hotline.suggestion import NullSuggester
from hotline.timing import Timing
from routing.calendar import WorkCalendar
from tests import infra
from tests.agent_ui.test_hub import close, connect, drain, wait_for
from tests.conftest import City, act, submit

pytestmark = pytest.mark.redis


@pytest.fixture
def two_workers(settings: Settings, city: City) -> Iterator[tuple[TestClient, TestClient, str]]:
    url = infra.require_redis()
    channel = f"hotline-test:{uuid.uuid4().hex[:10]}"
    engines = []
    apps = []
    for _ in range(2):
        worker_settings = settings.model_copy(update={"redis_url": url})
        bus = RedisBus(url, channel=channel)
        engine = make_engine(worker_settings.database_url)
        engines.append(engine)
        services = Services(settings=worker_settings, engine=engine, sessions=make_sessionmaker(engine, bus.publish),
                            bus=bus, timing=Timing(WorkCalendar(tz=worker_settings.city_timezone)),
                            suggester=NullSuggester())
        apps.append(create_app(worker_settings, services))
    client = redis.Redis.from_url(url)
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        deadline = time.monotonic() + 10
        while dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) < 2:  # both hubs subscribed
            assert time.monotonic() < deadline, "hubs did not subscribe to Redis"
            time.sleep(0.05)
        yield a, b, channel
    client.close()
    for engine in engines:
        engine.dispose()


def test_an_event_committed_on_one_worker_reaches_the_other(
    two_workers: tuple[TestClient, TestClient, str], city: City
) -> None:
    a, b, _ = two_workers
    cgj = connect(b, city, "cgj")
    zjj = connect(b, city, "zjj")
    agent = connect(a, city, "agent")
    try:
        ticket = submit(a, city)
        response = act(a, city, "dispatcher", ticket["id"], "dispatch", unit_id=city.ids["unit:cgj"])
        assert response.status_code == 200
        started = time.monotonic()
        event = wait_for(cgj, lambda m: m.get("type") == "dispatch")
        assert event["ticket_id"] == ticket["id"] and time.monotonic() - started < 2
        assert drain(zjj) == []  # same fan-out pass on worker b: the other unit got nothing
        assert [m["type"] for m in drain(agent)][:2] == ["receive", "dispatch"]
    finally:
        for s in (cgj, zjj, agent):
            close(s)


def test_presence_is_shared_between_workers(two_workers: tuple[TestClient, TestClient, str], city: City) -> None:
    a, b, channel = two_workers
    cgj = connect(b, city, "cgj")
    sup = connect(a, city, "supervisor")
    try:
        deadline = time.monotonic() + 5
        while True:
            data = a.get("/api/desk/presence", headers=city.headers("supervisor")).json()
            if data["users"] == 2:
                break
            assert time.monotonic() < deadline, data
            time.sleep(0.1)
        assert data["workers"] == 2
        roles = {(g["role"], g["unit_id"]) for g in data["groups"]}
        assert ("unit_handler", city.ids["unit:cgj"]) in roles and ("supervisor", None) in roles
        keys = redis.Redis.from_url(infra.require_redis()).keys(f"{channel}:presence:*")
        assert len(keys) == 2
        ttl = redis.Redis.from_url(infra.require_redis()).ttl(keys[0])
        assert 0 < ttl <= 60  # a crashed worker's entries expire
    finally:
        close(cgj)
        close(sup)
    deadline = time.monotonic() + 5
    while a.get("/api/desk/presence", headers=city.headers("supervisor")).json()["users"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_an_admin_edit_on_one_worker_applies_on_the_other(
    two_workers: tuple[TestClient, TestClient, str], city: City
) -> None:
    """A local holiday entered through worker a must count in the deadlines worker b gives (no restart)."""
    a, b, _ = two_workers
    day = "2027-03-15"  # a Monday
    other = b.app.state.services.timing  # type: ignore[attr-defined]
    assert other.calendar.overrides.get(date(2027, 3, 15)) is None
    response = a.put(f"/api/calendar/overrides/{day}", json={"working": False, "note": "本地节日"},
                     headers=city.headers("admin"))
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 5
    while other.calendar.overrides.get(date(2027, 3, 15)) is not False:
        assert time.monotonic() < deadline, "worker b never reloaded its calendar"
        time.sleep(0.05)
