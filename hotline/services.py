"""The long-lived parts one process holds: engine, sessions, event bus, calendar, text analysis.

Built once by the entry points (app, worker, CLI) from the settings; nothing else creates engines or buses.
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
from hotline.suggest import NullSuggester, Suggester
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
        from hotline.analysis import load_city_suggester

        services.suggester = load_city_suggester(services)
    return services
