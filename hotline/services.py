"""The long-lived parts one process holds: engine, sessions, event bus, calendar, text analysis.

Built once per process by the entry points (app, worker, CLI) from the settings with ``build_services``. Admin
edits reach every process through ``directory_changed`` / ``timing_changed`` / ``knowledge_changed``: applied here,
then announced on the bus, and applied by every other process's ``follow_config_changes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from hotline import config_changes, notices
from hotline.channel_probes import ChannelProbe
from hotline.db import CONNECT_TIMEOUT_SECONDS, make_engine, make_sessionmaker
from hotline.events import BUS_RECONNECTED, INDEX_NOTICE, EventBus, make_bus
from hotline.intake import NumberPool
from hotline.intake_batch import IntakeBatcher
from hotline.knowledge import in_effect
from hotline.login_guard import LoginGuard
from hotline.models import KnowledgeArticle
from hotline.notice_texts import NoticeTexts
from hotline.ratelimit import Counters, RateLimiter
from hotline.settings import Settings
from hotline.states import STOPPED_STATES
from hotline.suggester import CitySuggester, load_city_suggester, remember_tickets
from hotline.suggestion import NullSuggester, Suggester
from hotline.timing import Timing

log = logging.getLogger(__name__)

#: connections the channel accept keeps per process (``Services.accept_engine``)
ACCEPT_POOL_SIZE = 24


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    bus: EventBus
    timing: Timing
    suggester: Suggester = field(default_factory=NullSuggester)
    _knowledge: tuple[Any, dict[int, tuple[date | None, date | None]]] | None = None
    _knowledge_lock: threading.Lock = field(default_factory=threading.Lock)
    on_knowledge_changed: list[Callable[[], None]] = field(default_factory=list)
    #: the process's limits and login throttle, on one backend (Redis when configured: shared by every process)
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    login_guard: LoginGuard = field(default_factory=LoginGuard)
    #: the outside channels' state and test request for the admin desk, filled by the entry point ``hotline.app``
    channel_probes: dict[str, ChannelProbe] = field(default_factory=dict)
    #: this process's block of ticket numbers for the agents' synchronous intake (hotline.intake.NumberPool)
    numbers: NumberPool | None = None
    #: this process's group commit of the agents' synchronous intakes (hotline.intake_batch)
    intake_batcher: IntakeBatcher = field(init=False)
    #: tells this process's own configuration notices apart from other processes' (it applied its own already)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: per event loop, the asyncio engine of the channel accept (``accept_engine``)
    _accept_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = field(
        default_factory=weakref.WeakKeyDictionary)

    def __post_init__(self) -> None:
        if self.numbers is None:
            self.numbers = NumberPool(self.sessions)
        self.intake_batcher = IntakeBatcher(self)
        # Every process's sessions announce configuration changes, however its Services was put together.
        config_changes.track(self.sessions, self.instance_id)
        # The city's wording of the citizen's notices, for every transaction that queues one (hotline.notices).
        info = {**(self.sessions.kw.get("info") or {}),
                notices.TEXTS_KEY: NoticeTexts(sms=self.settings.phone.phone_sms)}
        self.sessions.configure(info=info)

    def accept_engine(self) -> AsyncEngine | None:
        """PostgreSQL: an asyncio engine on the same database, in autocommit, for the channel accept's one ``INSERT …
        ON CONFLICT DO NOTHING`` — one round trip on the event loop, where a trip through the threadpool per request
        (and BEGIN, INSERT, COMMIT) capped the accept's rate well below an asyncio reference. One per event loop (a
        served process has one; a test client may run several); its small pool opens connections only as needed.
        None on SQLite (the embedded default keeps its one writer's transaction)."""
        if self.engine.dialect.name != "postgresql":
            return None
        loop = asyncio.get_running_loop()
        engine = self._accept_engines.get(loop)
        if engine is None:
            # No pre-ping: it is a round trip of its own per accept. A connection the server dropped fails its first
            # statement instead, which invalidates the pool's older connections, and ``inbound.accept_on`` makes that
            # accept again once on a fresh one. The pool holds what one process has in flight under load (16 per
            # process at the benchmark's 32 connections): an overflow connection is opened and closed per request.
            engine = create_async_engine(
                self.engine.url, isolation_level="AUTOCOMMIT", pool_size=ACCEPT_POOL_SIZE, max_overflow=20,
                pool_pre_ping=False, pool_timeout=10, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
            self._accept_engines[loop] = engine
        return engine

    async def close_accept_engine(self) -> None:
        """At the end of a served process (its lifespan): the running loop's accept engine closes its connections."""
        engine = self._accept_engines.pop(asyncio.get_running_loop(), None)
        if engine is not None:
            await engine.dispose()

    def knowledge_search(self, session: Session, query: str, limit: int, *, on: date | None = None,
                         every_article: bool = False) -> list[tuple[int, float]]:
        """Best articles for an agent's direct reply (BM25 over segmented words, see nlp.knowledge): only articles
        in effect on ``on`` (default: today in the city; ``hotline.knowledge``) unless ``every_article`` (the
        admins' search, which marks the others)."""
        from nlp.knowledge import KnowledgeIndex

        with self._knowledge_lock:
            if self._knowledge is None:
                rows = session.execute(
                    select(KnowledgeArticle.id, KnowledgeArticle.title, KnowledgeArticle.body,
                           KnowledgeArticle.valid_from, KnowledgeArticle.valid_to).where(KnowledgeArticle.active)
                ).all()
                self._knowledge = (KnowledgeIndex([(r.id, r.title, r.body) for r in rows]),
                                   {r.id: (r.valid_from, r.valid_to) for r in rows})
            index, dates = self._knowledge
        assert isinstance(index, KnowledgeIndex)
        if every_article:
            return index.search(query, k=limit)
        day = on or datetime.now(self.timing.zone).date()
        return index.search(query, k=limit, keep=lambda article_id: in_effect(*dates[article_id], day))

    def knowledge_changed(self) -> None:
        with self._knowledge_lock:
            self._knowledge = None
        for callback in self.on_knowledge_changed:
            callback()


def refresh_routing(services: Services) -> None:
    """Rebuild the suggester's directory and catalogue from the database."""
    refresh = getattr(services.suggester, "refresh", None)
    if callable(refresh):
        refresh()


def apply_config_change(services: Services, what: str) -> None:
    """Apply a committed configuration change in this process (``hotline.config_changes`` tells the others)."""
    if what == "directory":
        refresh_routing(services)
    elif what == "timing":
        _reload_timing(services)
    elif what == "knowledge":
        services.knowledge_changed()


def directory_changed(services: Services) -> None:
    """After an admin's commit of areas, units, categories or catalogue rules: routing uses it here at once."""
    refresh_routing(services)


def timing_changed(services: Services, session: Session) -> None:
    """After an admin's commit of calendar overrides or deadline policies: deadlines use them here at once."""
    services.timing.reload(session)


def knowledge_changed(services: Services) -> None:
    """After an admin's commit of knowledge articles: the search index is rebuilt here at once."""
    services.knowledge_changed()


async def follow_config_changes(services: Services, poll_seconds: float = 5.0) -> None:
    """Startup hook: apply every other process's configuration changes here too.

    A bus notice is applied at once; the counters in ``config_versions`` are polled as well, for changes whose
    notice never reached this process (the CLI beside an embedded server, a lost publish).
    """
    import asyncio

    seen = await asyncio.to_thread(_config_versions, services)

    async def catch_up() -> None:
        nonlocal seen
        current = await asyncio.to_thread(_config_versions, services)
        for what, version in current.items():
            if version > seen.get(what, 0):
                try:
                    await asyncio.to_thread(apply_config_change, services, what)
                except Exception:
                    log.exception("could not apply a configuration change (%s)", what)
        seen = current

    async def listen() -> None:
        async for message in services.bus.subscribe():
            if message.get("type") == BUS_RECONNECTED or (
                message.get("type") == config_changes.CONFIG_CHANGED and message.get("origin") != services.instance_id
            ):  # after a bus outage a notice may have been lost: read the counters at once
                await catch_up()

    async def poll() -> None:
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                await catch_up()
            except Exception:
                log.exception("could not read the configuration versions")

    await asyncio.gather(listen(), poll())


def _config_versions(services: Services) -> dict[str, int]:
    with services.sessions() as session:
        return config_changes.versions(session)


def _reload_timing(services: Services) -> None:
    with services.sessions() as session:
        services.timing.reload(session)


def build_services(settings: Settings, *, load_model: bool = True) -> Services:
    engine = make_engine(settings.database_url)
    bus = make_bus(settings.redis_url)
    sessions = make_sessionmaker(engine, bus.publish)
    timing = Timing.from_database(sessions, settings.city_timezone)
    counters = Counters(settings.redis_url)
    services = Services(settings=settings, engine=engine, sessions=sessions, bus=bus, timing=timing,
                        rate_limiter=RateLimiter(counters), login_guard=LoginGuard(counters=counters))
    if load_model:
        services.suggester = load_city_suggester(settings.model_dir, sessions, services.knowledge_search)
    return services


#: at most this many ticket notices applied to the duplicate index at once (``follow_tickets``)
FOLLOW_BATCH = 500


def settle_heap() -> None:
    """For a long-running process, once its services are built: what it now holds for its whole life (the model,
    the duplicate and knowledge indexes, the routes, the catalogue) leaves the cyclic garbage collector's
    generations. Otherwise every full collection walks all of it again: 392 ms per collection with the demo
    city's model loaded (bench/intake_load.py's API worker, measured 2026-12-03), a pause that every request in
    flight waits out — the accept's p99. Not for tests, which build many short-lived services: what is frozen is
    never collected."""
    gc.collect()
    gc.freeze()


def build_long_lived_services(settings: Settings) -> Services:
    """The services of a serving or working process (``hotline serve``'s workers, ``hotline worker``)."""
    services = build_services(settings)
    settle_heap()
    return services


async def follow_tickets(services: Services) -> None:
    """Startup hook: keep this process's duplicate index in step with tickets created or finished by any process.

    The bus notices that arrive while a batch of them is applied form the next batch: the new tickets of a batch
    are read in one statement, in one hop to a thread. One read and one hop per ticket took the two API
    processes 8.6 ms of CPU per ticket the workers made (bench/intake_load.py, 2026-12-03), as much as the
    workers' own analysis. Notices are applied in the order they came (a ticket made and closed at once ends up
    out of the index). A ticket whose maker published its index entry (``INDEX_NOTICE``, just before its receive)
    is indexed from it: no read, no segmentation (they were two thirds of the API processes' CPU per ticket)."""
    notices: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def listen() -> None:
        try:
            async for message in services.bus.subscribe():
                kind = message.get("type")
                if kind == "receive" or kind == INDEX_NOTICE or message.get("to_status") in STOPPED_STATES:
                    notices.put_nowait(message)
        finally:
            notices.put_nowait(None)  # the subscription ended: so does this hook, with its error

    listener = asyncio.create_task(listen())
    try:
        while True:
            batch = [await notices.get()]
            while batch[-1] is not None and len(batch) < FOLLOW_BATCH and not notices.empty():
                batch.append(notices.get_nowait())
            messages = [m for m in batch if m is not None]
            if messages:
                await asyncio.to_thread(_follow, services, messages)
            if batch[-1] is None:
                await listener
                return
    finally:
        listener.cancel()


class TicketFollower:
    """``follow_tickets`` in a thread of its own, for a process without an event loop (``hotline worker``): its
    duplicate index then hears of the tickets the other workers and the API make (their index entries) and of
    tickets closed anywhere, as an API process's does. Without it a worker compared each message only with its
    own tickets and those open when it started, and a ticket closed elsewhere stayed a duplicate candidate."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, name="follow-tickets", daemon=True)

    def start(self) -> TicketFollower:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._follow())  # on its way out, asyncio.run ends the bus's reading task too
        except Exception:
            log.exception("this process stopped following ticket notices")

    async def _follow(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._running.set()
        with contextlib.suppress(asyncio.CancelledError):  # stopped
            await follow_tickets(self._services)

    def stop(self, timeout: float = 5) -> None:
        if self._running.wait(timeout) and self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)


def _follow(services: Services, messages: Sequence[dict[str, Any]]) -> None:
    """One batch of ticket notices, in order, on the duplicate index of this process."""
    suggester = services.suggester
    if not isinstance(suggester, CitySuggester):
        return
    new: list[int] = []

    def add_new() -> None:
        try:
            remember_tickets(services.sessions, suggester, new)
        except Exception:
            log.exception("could not add tickets %s to the duplicate index", new)
        new.clear()

    for message in messages:
        try:
            ticket_id = int(message["ticket_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("a ticket notice without a ticket id: %.200s", message)
            continue
        kind = message.get("type")
        if kind == INDEX_NOTICE:
            if not suggester.knows(ticket_id):  # else made here, or noticed already
                if new:
                    add_new()  # in order
                try:
                    suggester.remember_noticed(message)
                except (KeyError, TypeError, ValueError) as exc:  # its receive reads the ticket instead
                    log.warning("an index notice that is not one (%s): %.200s", exc, message)
        elif kind == "receive":
            # made by this process's batch, or indexed from its notice: nothing to read
            if not services.intake_batcher.indexed_here(ticket_id) and not suggester.knows(ticket_id):
                new.append(ticket_id)
        else:  # stopped: the tickets noticed before it are in first
            if new:
                add_new()
            suggester.forget(ticket_id)
    if new:
        add_new()
