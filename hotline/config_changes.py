"""Configuration changes reach every process, by whatever path they were made.

Every transaction that adds, changes or deletes a row of the directory (areas, units, categories, catalogue rules),
the timing rules (calendar overrides and years, office hours, deadline policies) or the knowledge base raises that
kind's counter in ``config_versions`` *in the same transaction* and, after the commit, publishes a
``config_changed`` notice on the event bus. Processes apply a notice at once and also poll the counters
(``poll_seconds``), so a change made where no bus reaches them — the CLI beside an embedded SQLite server, a process
that was restarting — still arrives. The API endpoint that made a change applies it in its own process before
answering (``apply``), so the admin's next request already sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from hotline.db import queue_event
from hotline.models import (
    Area,
    CalendarOverride,
    CalendarYear,
    CatalogueRule,
    Category,
    ConfigVersion,
    DeadlinePolicyRow,
    KnowledgeArticle,
    OfficeHoursRow,
    Unit,
)

CONFIG_CHANGED = "config_changed"
KINDS = ("directory", "timing", "knowledge")
_KIND_OF: dict[type, str] = {
    Area: "directory", Unit: "directory", Category: "directory", CatalogueRule: "directory",
    CalendarOverride: "timing", CalendarYear: "timing", DeadlinePolicyRow: "timing", OfficeHoursRow: "timing",
    KnowledgeArticle: "knowledge",
}
_SEEN = "config_kinds_changed"


def kinds_of(objects: Iterable[Any]) -> set[str]:
    return {kind for obj in objects if (kind := _KIND_OF.get(type(obj))) is not None}


def mark_changed(session: Session, *kinds: str) -> None:
    """For changes the ORM cannot see (bulk Core statements): count them as configuration changes."""
    session.info.setdefault(_SEEN, set()).update(kinds)


def track(factory: sessionmaker[Session], origin: str) -> None:
    """Raise the counters in every committing transaction of ``factory`` that touched configuration (once per
    factory, however often it is called)."""
    if getattr(factory, "_hotline_config_tracked", False):
        return
    factory._hotline_config_tracked = True  # type: ignore[attr-defined]

    @event.listens_for(factory, "before_flush")
    def _collect(session: Session, _context: Any, _instances: Any) -> None:
        changed = kinds_of([*session.new, *session.dirty, *session.deleted])
        if changed:
            session.info.setdefault(_SEEN, set()).update(changed)

    @event.listens_for(factory, "before_commit")
    def _bump(session: Session) -> None:
        changed = set(session.info.get(_SEEN, ())) | kinds_of([*session.new, *session.dirty, *session.deleted])
        if not changed:
            return
        now = datetime.now(UTC)
        for kind in sorted(changed):
            raised = session.execute(
                update(ConfigVersion).where(ConfigVersion.name == kind)
                .values(version=ConfigVersion.version + 1, changed_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if not raised:
                session.add(ConfigVersion(name=kind, version=1, changed_at=now))
            queue_event(session, {"type": CONFIG_CHANGED, "what": kind, "origin": origin})
        session.info[_SEEN] = set()

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_SEEN, None)


def versions(session: Session) -> dict[str, int]:
    return {name: version for name, version in session.execute(select(ConfigVersion.name, ConfigVersion.version))}
