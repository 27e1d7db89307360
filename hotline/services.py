"""The long-lived parts one process holds: engine, sessions, event bus, calendar, text analysis.

Built once per process by the entry points (app, worker, CLI) from the settings with ``build_services``. Admin
edits reach every process through ``directory_changed`` / ``timing_changed`` / ``knowledge_changed``: applied here,
then announced on the bus, and applied by every other process's ``follow_config_changes``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from hotline.db import make_engine, make_sessionmaker
from hotline.events import EventBus, make_bus
from hotline.models import KnowledgeArticle
from hotline.settings import Settings
from hotline.states import STOPPED_STATES
from hotline.suggester import CitySuggester, load_city_suggester, remember_ticket
from hotline.suggestion import NullSuggester, Suggester
from hotline.timing import Timing

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    bus: EventBus
    timing: Timing
    suggester: Suggester = field(default_factory=NullSuggester)
    _knowledge: object | None = None
    _knowledge_lock: threading.Lock = field(default_factory=threading.Lock)
    on_knowledge_changed: list[Callable[[], None]] = field(default_factory=list)
    #: tells this process's own configuration notices apart from other processes' (it applied its own already)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def knowledge_search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        """Best articles for an agent's direct reply (BM25 over segmented words, see nlp.knowledge)."""
        from nlp.knowledge import KnowledgeIndex

        with self._knowledge_lock:
            if self._knowledge is None:
                rows = session.execute(
                    select(KnowledgeArticle.id, KnowledgeArticle.title, KnowledgeArticle.body).where(
                        KnowledgeArticle.active
                    )
                ).all()
                self._knowledge = KnowledgeIndex([(r.id, r.title, r.body) for r in rows])
            index = self._knowledge
        assert isinstance(index, KnowledgeIndex)
        return index.search(query, k=limit)

    def knowledge_changed(self) -> None:
        with self._knowledge_lock:
            self._knowledge = None
        for callback in self.on_knowledge_changed:
            callback()


CONFIG_CHANGED = "config_changed"


def refresh_routing(services: Services) -> None:
    """Rebuild the suggester's directory and catalogue from the database (after an admin edit)."""
    refresh = getattr(services.suggester, "refresh", None)
    if callable(refresh):
        refresh()


def directory_changed(services: Services) -> None:
    """After an admin's commit of areas, units, categories or catalogue rules (API, Excel import, CLI): routing uses
    the change at once here, and every other process when the bus brings it the notice."""
    refresh_routing(services)
    announce_config_change(services, "directory")


def timing_changed(services: Services, session: Session) -> None:
    """After an admin's commit of calendar overrides or deadline policies: reload here, announce to the others."""
    services.timing.reload(session)
    announce_config_change(services, "timing")


def knowledge_changed(services: Services) -> None:
    """After an admin's commit of knowledge articles: rebuild the search index here and in every other process."""
    services.knowledge_changed()
    announce_config_change(services, "knowledge")


def announce_config_change(services: Services, what: str) -> None:
    """Tell every API process (through the event bus) that the directory or the timing rules changed.

    Called after the admin's commit. The notice has no ``ticket_id``, so desks never see it. Best effort like every
    publish: a process that misses it keeps the old rules until the next notice or its restart.
    """
    services.bus.publish([{"type": CONFIG_CHANGED, "what": what, "origin": services.instance_id}])


async def follow_config_changes(services: Services) -> None:
    """Startup hook: apply other processes' admin edits here too (several ``--workers`` behind one database)."""
    import asyncio

    async for message in services.bus.subscribe():
        if message.get("type") != CONFIG_CHANGED or message.get("origin") == services.instance_id:
            continue
        try:
            if message.get("what") == "directory":
                await asyncio.to_thread(refresh_routing, services)
            elif message.get("what") == "timing":
                await asyncio.to_thread(_reload_timing, services)
            elif message.get("what") == "knowledge":
                services.knowledge_changed()
        except Exception:
            log.exception("could not apply a configuration change (%s)", message.get("what"))


def _reload_timing(services: Services) -> None:
    with services.sessions() as session:
        services.timing.reload(session)


def build_services(settings: Settings, *, load_model: bool = True) -> Services:
    engine = make_engine(settings.database_url)
    bus = make_bus(settings.redis_url)
    sessions = make_sessionmaker(engine, bus.publish)
    timing = Timing.from_database(sessions, settings.city_timezone)
    services = Services(settings=settings, engine=engine, sessions=sessions, bus=bus, timing=timing)
    if load_model:
        services.suggester = load_city_suggester(settings.model_dir, sessions, services.knowledge_search)
    return services


async def follow_tickets(services: Services) -> None:
    """Startup hook: keep this process's duplicate index in step with tickets created or finished by any process."""
    import asyncio

    async for message in services.bus.subscribe():
        suggester = services.suggester
        if not isinstance(suggester, CitySuggester):
            continue
        try:
            if message.get("type") == "receive":
                await asyncio.to_thread(remember_ticket, services.sessions, suggester, int(message["ticket_id"]))
            elif message.get("to_status") in STOPPED_STATES:
                suggester.forget(int(message["ticket_id"]))
        except Exception:
            log.exception("could not update the duplicate index for %s", message.get("ticket_id"))
