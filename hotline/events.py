"""Event fan-out after commit: in-process when Redis is not configured, Redis pub/sub across API workers otherwise.

Publishing is best effort by design: the event is already in ``ticket_events`` (the source of truth), and a desk
that missed a notice catches up from the log by its last event id. So a Redis outage must never turn a committed
request into an error; it is logged and the request succeeds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from hotline import metrics

log = logging.getLogger(__name__)
CHANNEL = "hotline:events"
#: yielded by ``subscribe`` once the subscription is back after a loss: whatever was published meanwhile never
#: arrived here, so listeners that forward events (the desk hub) make their clients catch up from the log
BUS_RECONNECTED = "bus_reconnected"


class EventBus(Protocol):
    def publish(self, messages: list[dict[str, Any]]) -> None: ...

    def subscribe(self) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None: ...


class LocalBus:
    """One process: subscribers are asyncio queues; publishers may be worker threads (sync endpoints)."""

    def __init__(self, max_queue: int = 10_000) -> None:
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = set()
        self._lock = threading.Lock()
        self._max_queue = max_queue

    def publish(self, messages: list[dict[str, Any]]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            for message in messages:
                try:
                    loop.call_soon_threadsafe(_put_nowait, queue, message)
                except RuntimeError:  # loop closed
                    continue

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._max_queue)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.add(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            with self._lock:
                self._subscribers.discard(entry)

    async def close(self) -> None:
        return None


def _put_nowait(queue: asyncio.Queue[dict[str, Any]], message: dict[str, Any]) -> None:
    try:
        queue.put_nowait(message)
    except asyncio.QueueFull:
        log.warning("event subscriber is %d messages behind; dropping (it will catch up from the log)", queue.qsize())


class RedisBus:
    """Several API workers: every worker publishes to and subscribes from one Redis channel."""

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self._url = url
        self._channel = channel
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._shared: dict[asyncio.AbstractEventLoop, _SharedSubscription] = {}

    def publish(self, messages: list[dict[str, Any]]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for message in messages:
                pipe.publish(self._channel, json.dumps(message, ensure_ascii=False, default=str))
            pipe.execute()
        except redis.RedisError:
            metrics.EVENT_PUBLISH_FAILURES.inc()
            log.exception("could not publish %d event(s) to Redis; desks will catch up from the log", len(messages))

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Yield events; reconnects after a Redis restart and then yields ``{"type": BUS_RECONNECTED}`` (the gap is
        filled from the log by whoever needs it). The subscribers of one event loop share one Redis subscription
        (``_SharedSubscription``): each message is read and decoded once per process, not once per listener (the
        desk hub and the ticket and configuration followers each decoded every message: a third of an API
        process's CPU while the workers made tickets, bench/intake_load.py 2026-12-04)."""
        loop = asyncio.get_running_loop()
        shared = self._shared.get(loop)
        if shared is None:
            shared = self._shared[loop] = _SharedSubscription(self._url, self._channel)
        queue = shared.join()
        try:
            while True:
                yield await queue.get()
        finally:
            if shared.leave(queue) and self._shared.get(loop) is shared:
                del self._shared[loop]

    async def close(self) -> None:
        self._client.close()


class _SharedSubscription:
    """One Redis subscription of one event loop, read by a task of its own while anyone listens; every message is
    put on each listener's queue (a listener ``max_queue`` messages behind loses the newest, as on ``LocalBus``)."""

    def __init__(self, url: str, channel: str, max_queue: int = 10_000) -> None:
        self._url = url
        self._channel = channel
        self._max_queue = max_queue
        self._queues: list[asyncio.Queue[dict[str, Any]]] = []
        self._task = asyncio.get_running_loop().create_task(self._read())

    def join(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._max_queue)
        self._queues.append(queue)
        return queue

    def leave(self, queue: asyncio.Queue[dict[str, Any]]) -> bool:
        """Returns True when the last listener left: the subscription is closed."""
        self._queues.remove(queue)
        if self._queues:
            return False
        self._task.cancel()
        return True

    def _deliver(self, message: dict[str, Any]) -> None:
        for queue in self._queues:
            _put_nowait(queue, message)

    async def _read(self) -> None:
        lost = False
        while True:
            client = aioredis.Redis.from_url(self._url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if lost:
                    log.info("Redis subscription restored")
                    lost = False
                    self._deliver({"type": BUS_RECONNECTED})
                async for raw in pubsub.listen():
                    if raw.get("type") != "message":
                        continue
                    try:
                        message = json.loads(raw["data"])
                    except ValueError:
                        log.warning("a bus message that is not JSON, left out: %.200r", raw["data"])
                        continue
                    if isinstance(message, dict):
                        self._deliver(message)
            except (redis.RedisError, OSError):
                if not lost:
                    log.warning("Redis subscription lost; reconnecting every second")
                lost = True
                await asyncio.sleep(1)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except (redis.RedisError, OSError):
                    pass


def make_bus(redis_url: str | None) -> EventBus:
    return RedisBus(redis_url) if redis_url else LocalBus()


#: a bus message that is no ticket event: a notice to the open desks of some roles (``desk_notice``), e.g. the phone
#: queue changed (kind ``phone_queue``). It carries no personal data: the desk reloads what it shows through REST,
#: which masks per role. Not replayed after a reconnect: the desk reloads its panels then.
DESK_NOTICE = "desk_notice"


def desk_notice(kind: str, roles: list[str], **data: Any) -> dict[str, Any]:
    return {"type": DESK_NOTICE, "kind": kind, "roles": sorted(roles), **data}


#: a bus message that is no ticket event: a new ticket's entry in the duplicate index of the process that made it
#: (``CitySuggester.remember``), published just before its receive event, so that the other processes index the
#: ticket as it was indexed there instead of reading and segmenting it again (``services.follow_tickets``). No desk
#: sees it (it has no event id). Lost in a bus outage, its receive event is read back the old way if that came.
INDEX_NOTICE = "duplicate_index"
