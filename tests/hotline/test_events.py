"""Events leave only after the commit, and a bus outage never fails a request."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from hotline.db import attach_publisher, make_sessionmaker, queue_event
from hotline.events import LocalBus, RedisBus
from hotline.services import Services
from tests import infra
from tests.conftest import City, act, submit


def recording_sessions(services: Services) -> tuple[Any, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    return make_sessionmaker(services.engine, seen.extend), seen


def test_events_are_published_after_commit_only(services: Services, city: City) -> None:
    sessions, seen = recording_sessions(services)
    with sessions() as s:
        queue_event(s, {"event_id": 1, "type": "x"})
        assert seen == []
        s.rollback()
    assert seen == []
    with sessions() as s:
        queue_event(s, {"event_id": 2, "type": "x"})
        s.commit()
    assert [m["event_id"] for m in seen] == [2]


def test_a_savepoint_publishes_with_the_outermost_commit_and_its_rollback_drops_only_its_own_events(
    services: Services, city: City
) -> None:
    sessions, seen = recording_sessions(services)
    with sessions() as s:
        queue_event(s, {"event_id": 1, "type": "x"})
        with s.begin_nested():
            queue_event(s, {"event_id": 2, "type": "x"})
        assert seen == []  # a released savepoint is no commit
        with pytest.raises(RuntimeError), s.begin_nested():
            queue_event(s, {"event_id": 3, "type": "x"})
            with s.begin_nested():
                queue_event(s, {"event_id": 4, "type": "x"})
            raise RuntimeError("this message fails")
        with s.begin_nested():
            queue_event(s, {"event_id": 5, "type": "x"})
        s.commit()
    assert [m["event_id"] for m in seen] == [1, 2, 5]
    with sessions() as s:
        with s.begin_nested():
            queue_event(s, {"event_id": 6, "type": "x"})
        s.rollback()
    assert [m["event_id"] for m in seen] == [1, 2, 5]


def test_a_refused_action_publishes_nothing(client: TestClient, city: City, services: Services) -> None:
    t = submit(client, city)
    sent: list[dict[str, Any]] = []
    attach_publisher(services.sessions, sent.extend)
    assert act(client, city, "agent", t["id"], "close").status_code == 409
    assert sent == []
    assert act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"]).status_code == 200
    assert [m["type"] for m in sent] == ["dispatch"]
    assert sent[0]["lead_unit_id"] == city.ids["unit:cjjd"] and sent[0]["ticket_id"] == t["id"]


def test_local_bus_delivers_to_subscribers() -> None:
    async def scenario() -> list[dict[str, Any]]:
        bus = LocalBus()
        received: list[dict[str, Any]] = []

        async def listen() -> None:
            async for message in bus.subscribe():
                received.append(message)
                if len(received) == 2:
                    return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.01)
        await asyncio.to_thread(bus.publish, [{"event_id": 1}, {"event_id": 2}])
        await asyncio.wait_for(task, 2)
        return received

    assert [m["event_id"] for m in asyncio.run(scenario())] == [1, 2]


@pytest.mark.redis
def test_redis_bus_round_trip() -> None:
    url = infra.require_redis()

    async def scenario() -> list[dict[str, Any]]:
        bus = RedisBus(url, channel="hotline:test-events")
        received: list[dict[str, Any]] = []

        async def listen() -> None:
            async for message in bus.subscribe():
                received.append(message)
                return

        task = asyncio.create_task(listen())
        for _ in range(50):  # wait until the subscription is active
            await asyncio.sleep(0.05)
            bus.publish([{"event_id": 7, "type": "dispatch", "text": "澄江街道"}])
            if received:
                break
        await asyncio.wait_for(task, 5)
        await bus.close()
        return received

    assert asyncio.run(scenario())[0] == {"event_id": 7, "type": "dispatch", "text": "澄江街道"}


def test_a_redis_outage_does_not_fail_the_request(client: TestClient, city: City, services: Services) -> None:
    dead = RedisBus("redis://127.0.0.1:1/0")
    attach_publisher(services.sessions, dead.publish)
    t = submit(client, city)
    assert act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"]).status_code == 200


@pytest.mark.redis
def test_the_listeners_of_one_process_share_one_redis_subscription() -> None:
    url = infra.require_redis()
    channel = f"hotline:test-shared-{uuid.uuid4().hex[:10]}"
    peek = redis.Redis.from_url(url)

    async def scenario() -> tuple[list[list[dict[str, Any]]], int]:
        bus = RedisBus(url, channel=channel)
        received: list[list[dict[str, Any]]] = [[], [], []]  # the desk hub, the ticket and config followers, say

        async def listen(into: list[dict[str, Any]]) -> None:
            async for message in bus.subscribe():
                into.append(message)
                if len(into) == 2:
                    return

        tasks = [asyncio.create_task(listen(into)) for into in received]
        for _ in range(100):  # wait until the subscription is active
            await asyncio.sleep(0.05)
            if dict(peek.pubsub_numsub(channel)).get(channel.encode(), 0):
                break
        subscriptions = dict(peek.pubsub_numsub(channel))[channel.encode()]
        peek.publish(channel, "not json {")  # left out, the others still come
        bus.publish([{"event_id": 1}, {"event_id": 2}])
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        await bus.close()
        return received, subscriptions

    received, subscriptions = asyncio.run(scenario())
    peek.close()
    assert subscriptions == 1
    assert received == [[{"event_id": 1}, {"event_id": 2}]] * 3
