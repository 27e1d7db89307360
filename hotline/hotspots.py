"""Hot spots (热点/突发聚集): this process's index of every ticket received lately, kept in step with the database."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from hotline.models import Area, Ticket
from nlp.duplicates import DuplicateIndex, HotSpot

HOTSPOT_HOLD = timedelta(days=7)  # the longest window a caller may ask for
HOTSPOT_CHUNK = 500  # ticket ids per IN (...) query
_hotspot_create = threading.Lock()


class HotSpotIndex:
    """This process's duplicate index over every ticket received lately, kept in step with the database.

    The database is the source of truth: each call lists the ids (and areas) received in the held span — a
    cheap indexed query without texts — and only segments the tickets it has not seen (or whose area changed),
    so the page's live refreshes cost one small query and the clustering. It holds every ticket received in the
    span whatever its state: a burst is about arrivals, and agents merging the reports of one incident (并案)
    must not make the incident's hot spot disappear. The held span grows to the longest window asked for.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index = DuplicateIndex(window=HOTSPOT_HOLD)
        self.loaded: dict[int, int | None] = {}  # ticket id -> area id it was indexed with
        self.span = timedelta(0)
        self.areas: dict[int, tuple[str, str, int | None]] = {}  # id -> (code, name, parent id)
        self.by_code: dict[str, int] = {}

    @classmethod
    def of(cls, app: Any) -> HotSpotIndex:
        with _hotspot_create:
            found = getattr(app.state, "desk_hotspots", None)
            if found is None:
                found = app.state.desk_hotspots = cls()
            assert isinstance(found, cls)
            return found

    def _sync_areas(self, session: Any) -> None:
        areas = {a_id: (code, name, parent) for a_id, code, name, parent in session.execute(
            select(Area.id, Area.code, Area.name, Area.parent_id))}
        if areas != self.areas:
            self.areas = areas
            self.by_code = {code: a_id for a_id, (code, _, _) in areas.items()}
            self.index.set_places({code: areas[parent][0] if parent in areas else None
                                   for code, _, parent in areas.values()})

    def spots(self, session: Any, now: datetime, window: timedelta, min_size: int,
              min_score: float) -> tuple[list[HotSpot], int]:
        """Clusters in ``(now - window, now]`` and how many tickets with a known area that window holds."""
        with self.lock:
            self._sync_areas(session)
            self.span = max(self.span, window)
            rows = session.execute(
                select(Ticket.id, Ticket.area_id, Ticket.received_at).where(Ticket.received_at >= now - self.span)
            ).all()
            current = {tid: area_id for tid, area_id, _ in rows}
            for tid in [t for t in self.loaded if t not in current]:
                self.index.remove(tid)
                del self.loaded[tid]
            todo = [tid for tid, area_id in current.items() if tid not in self.loaded or self.loaded[tid] != area_id]
            for i in range(0, len(todo), HOTSPOT_CHUNK):
                chunk = todo[i:i + HOTSPOT_CHUNK]
                found = session.execute(
                    select(Ticket.id, Ticket.title, Ticket.text, Ticket.area_id, Ticket.received_at)
                    .where(Ticket.id.in_(chunk))
                ).all()
                self.index.add_many(
                    (r.id, f"{r.title} {r.text}", self.areas[r.area_id][0] if r.area_id in self.areas else None,
                     r.received_at)
                    for r in found
                )
                self.loaded.update({r.id: r.area_id for r in found})
            since = now - window
            scanned = sum(1 for _, area_id, at in rows if area_id is not None and since <= at <= now)
            spots = self.index.hot_spots(min_size=min_size, min_score=min_score, at=now, window=window)
            return spots, scanned

    def area_path(self, area_id: int | None) -> list[str]:
        names: list[str] = []
        seen: set[int] = set()
        while area_id is not None and area_id in self.areas and area_id not in seen:
            seen.add(area_id)
            _, name, parent = self.areas[area_id]
            names.append(name)
            area_id = parent
        return list(reversed(names))
