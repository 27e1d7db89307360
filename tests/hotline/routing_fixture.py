"""The demo city's routing fixture: requests written as citizens phrase them, and how the analysis does on them.

``data/routing_requests.json`` holds the requests (written for this test, independently of the seed corpus). Each
names the units a real centre would accept as lead (``accept``), and where it applies the emergency line(s), the
kind (only consultations are marked), the area and the place text the ticket's 地点 should get. Used by
``tests/hotline/test_routing_quality.py`` and ``bench/routing_quality.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hotline.db import make_engine, make_sessionmaker
from hotline.demo import load_directory
from hotline.events import LocalBus
from hotline.migrate import upgrade
from hotline.services import Services
from hotline.settings import Settings
from hotline.suggester import CitySuggester
from hotline.suggestion import Suggestion
from hotline.timing import Timing
from routing.calendar import WorkCalendar

FIXTURE = Path(__file__).resolve().parent / "data" / "routing_requests.json"
REPO = Path(__file__).resolve().parents[2]
SEED_CORPUS = REPO / "nlp" / "data" / "seed_corpus.jsonl"


@dataclass(frozen=True)
class Request:
    text: str
    accept: tuple[str, ...]
    kind: str | None = None
    emergency: tuple[str, ...] = ()
    urgent: bool = False
    area: str | None = None
    place: str | None = None


def load_requests(path: Path = FIXTURE) -> list[Request]:
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for row in rows:
        lines = row.get("emergency") or ()
        lines = (lines,) if isinstance(lines, str) else tuple(lines)
        out.append(Request(text=row["text"], accept=tuple(row["accept"]), kind=row.get("kind"), emergency=lines,
                           urgent=bool(row.get("urgent") or lines), area=row.get("area"), place=row.get("place")))
    return out


@dataclass(frozen=True)
class Outcome:
    request: Request
    suggestion: Suggestion
    unit_code: str | None
    category: str | None

    @property
    def unit_right(self) -> bool:
        return self.unit_code in self.request.accept

    @property
    def emergency_right(self) -> bool:
        if self.request.emergency:
            return self.suggestion.urgent and self.suggestion.emergency_line in self.request.emergency
        return not self.request.urgent or self.suggestion.urgent

    @property
    def place_right(self) -> bool:
        return self.request.place is None or self.suggestion.place == self.request.place

    @property
    def area_right(self) -> bool:
        return self.request.area is None or self.suggestion.area_code == self.request.area


def demo_city(database_url: str) -> Services:
    """A migrated database with the demo city's directory and knowledge base (no tickets)."""
    upgrade(database_url)
    settings = Settings(demo=True, database_url=database_url, redis_url=None, embedded_worker=False)
    engine = make_engine(database_url)
    bus = LocalBus()
    sessions = make_sessionmaker(engine, bus.publish)
    services = Services(settings=settings, engine=engine, sessions=sessions, bus=bus,
                        timing=Timing(WorkCalendar(tz=settings.city_timezone)))
    with sessions() as session:
        load_directory(session)
        session.commit()
    return services


def run(services: Services, suggester: CitySuggester, requests: list[Request]) -> list[Outcome]:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    units = {u.id: u.code for u in suggester.directory.units_by_id.values()}
    names = suggester.directory.names["category"]
    codes = suggester.directory.category_codes
    out = []
    with services.sessions() as session:
        for request in requests:
            s = suggest(session, suggester, request, now)
            category = names.get(codes.get(s.category_id, "")) if s.category_id is not None else None
            out.append(Outcome(request, s, units.get(s.unit_id) if s.unit_id is not None else None, category))
    return out


def suggest(session: Session, suggester: CitySuggester, request: Request, now: datetime) -> Suggestion:
    return suggester.suggest(session, "", request.text, None, now)


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    def share(hits: list[bool]) -> float:
        return round(sum(hits) / len(hits), 4) if hits else 1.0

    consultations = [o for o in outcomes if o.request.kind == "consultation"]
    emergencies = [o for o in outcomes if o.request.urgent]
    placed = [o for o in outcomes if o.request.place is not None]
    with_area = [o for o in outcomes if o.request.area is not None]
    return {
        "requests": len(outcomes),
        "lead_unit_right": share([o.unit_right for o in outcomes]),
        "emergencies": len(emergencies),
        "emergency_right": share([o.emergency_right for o in emergencies]),
        "consultations": len(consultations),
        "consultation_typed": share([o.suggestion.kind == "consultation" for o in consultations]),
        "consultation_auto_dispatched": sum(o.suggestion.auto_dispatch for o in consultations),
        "area_right": share([o.area_right for o in with_area]),
        "place_right": share([o.place_right for o in placed]),
    }
