"""``CitySuggester``: the nlp package and the dispatch catalogue, fed with this city's directory.

It holds in memory what every intake needs: the classifier (loaded once), the gazetteer, the catalogue rules and
the near-duplicate index of recent open tickets (segmented with the city dictionary: areas, aliases, unit names,
domain terms; places matched along the area hierarchy). The directory parts are rebuilt by ``refresh()`` when an
admin edits them; each API worker keeps its own copy (they are small), and the duplicate index is rebuilt from
the database at start.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.models import Area, CatalogueRule, Category, Status, Ticket, Unit
from hotline.suggest import CategorySuggestion, NullSuggester, Suggester, Suggestion
from nlp.analyzer import TextAnalyzer
from nlp.duplicates import DuplicateIndex
from nlp.evidence import TermEvidence, decode, mix, name_terms, note_terms
from nlp.places import Gazetteer, PlaceEntry, place_phrase, user_words
from nlp.segment import Segmenter, join_segmented
from nlp.taxonomy import resolve
from routing.catalogue import Catalogue, Rule, category_path, city_bureau_codes

if TYPE_CHECKING:
    from hotline.services import Services
    from nlp.classifier import Model

log = logging.getLogger(__name__)
DUPLICATE_WINDOW = timedelta(days=7)
#: BM25 score from which the best knowledge article is taken to answer a consultation on the phone
KNOWLEDGE_ANSWER_SCORE = 10.0
DUPLICATE_STATES = (Status.received, Status.dispatched, Status.signed, Status.returned, Status.reopened,
                    Status.awaiting_citizen)


@dataclass(frozen=True)
class RouteChoice:
    unit_id: int | None
    unit_name: str | None
    co_unit_ids: list[int]
    rule_id: int | None
    explanation: str


@dataclass
class Directory:
    """A snapshot of the city's directory, as the analysis needs it."""

    categories_by_name: dict[str, tuple[int, str]]  # name (any level) -> (id, code)
    category_codes: dict[int, str]
    area_paths: dict[int, list[str]]  # area id -> codes from the city down
    areas_by_code: dict[str, Area]
    units_by_code: dict[str, Unit]
    units_by_id: dict[int, Unit]
    catalogue: Catalogue
    names: dict[str, dict[str, str]]
    gazetteer: Gazetteer
    category_parents: dict[str, str | None]  # category code -> parent code
    evidence: TermEvidence  # the words of category names and catalogue notes

    @classmethod
    def load(cls, session: Session) -> Directory:
        categories = list(session.scalars(select(Category).where(Category.active)))
        areas = list(session.scalars(select(Area)))
        units = list(session.scalars(select(Unit).where(Unit.active)))
        by_id = {a.id: a for a in areas}
        paths: dict[int, list[str]] = {}
        for a in areas:
            chain: list[str] = []
            cur: Area | None = a
            while cur is not None:
                chain.append(cur.code)
                cur = by_id.get(cur.parent_id) if cur.parent_id else None
            paths[a.id] = list(reversed(chain))
        units_by_id = {u.id: u for u in units}
        cat_codes = {c.id: c.code for c in categories}
        rules = [
            Rule(
                id=r.id,
                category=cat_codes[r.category_id],
                area=by_id[r.area_id].code,
                lead=units_by_id[r.lead_unit_id].code,
                co=tuple(units_by_id[u].code for u in r.co_unit_ids if u in units_by_id),
                note=r.note,
            )
            for r in session.scalars(select(CatalogueRule).where(CatalogueRule.active))
            if r.category_id in cat_codes and r.lead_unit_id in units_by_id and r.area_id in by_id
        ]
        gazetteer = Gazetteer(
            PlaceEntry(
                code=a.code,
                name=a.name,
                level=a.level,
                parent_code=by_id[a.parent_id].code if a.parent_id in by_id else None,
                aliases=tuple(a.aliases or ()),
            )
            for a in areas
        )
        # The catalogue's own words for each category: its name and the examples in its rules' notes (evidence
        # where the model is unsure, see nlp.evidence).
        words: dict[str, list[str]] = {c.code: name_terms(c.name) for c in categories}
        for rule in rules:
            words.setdefault(rule.category, []).extend(note_terms(rule.note))
        by_level = sorted(categories, key=lambda c: (-c.level, c.code))  # on a shared name the higher level wins
        return cls(
            categories_by_name={c.name: (c.id, c.code) for c in by_level},
            category_codes=cat_codes,
            area_paths=paths,
            areas_by_code={a.code: a for a in areas},
            units_by_code={u.code: u for u in units},
            units_by_id=units_by_id,
            catalogue=Catalogue(rules, city_bureaus=city_bureau_codes(areas, units)),
            names={
                "category": {c.code: c.name for c in categories},
                "area": {a.code: a.name for a in areas},
                "unit": {u.code: u.name for u in units},
            },
            gazetteer=gazetteer,
            category_parents={c.code: cat_codes.get(c.parent_id) if c.parent_id else None for c in categories},
            evidence=TermEvidence(words),
        )

    def route(self, category_id: int | None, area_id: int | None) -> RouteChoice:
        if category_id is None or category_id not in self.category_codes:
            return RouteChoice(None, None, [], None, "未分类，需人工派单")
        area_path = self.area_paths.get(area_id, []) if area_id is not None else []
        if not area_path:
            area_path = [code for code, a in self.areas_by_code.items() if a.level == "city"][:1]
        decision = self.catalogue.route(
            category_path(self.category_codes[category_id]),
            area_path,
            category_names=self.names["category"],
            area_names=self.names["area"],
            unit_names=self.names["unit"],
        )
        lead = self.units_by_code.get(decision.lead) if decision.lead else None
        return RouteChoice(
            unit_id=lead.id if lead else None,
            unit_name=lead.name if lead else None,
            co_unit_ids=[self.units_by_code[c].id for c in decision.co if c in self.units_by_code],
            rule_id=decision.rule_id,
            explanation=decision.explanation,
        )


def _area_parents(directory: Directory) -> dict[str, str | None]:
    """Area code -> its parent's code (None for the city), for the duplicate index's place matching."""
    parents: dict[str, str | None] = {}
    for area in directory.areas_by_code.values():
        path = directory.area_paths.get(area.id, [area.code])
        parents[area.code] = path[-2] if len(path) > 1 else None
    return parents


class CitySuggester:
    def __init__(self, services: Services, model: Model | None) -> None:
        self._services = services
        self._model = model
        self._lock = threading.Lock()
        with services.sessions() as session:
            self._directory = Directory.load(session)
            self._analyzer = self._make_analyzer()
            self._duplicates = self._make_duplicate_index(self._directory)
            self._load_open_tickets(session)

    @staticmethod
    def _make_duplicate_index(directory: Directory) -> DuplicateIndex:
        """Duplicates are looked up with the city's words (place and unit names, 燃气泄漏 …) kept whole, and with
        the area hierarchy, so a report naming the community matches one naming its street."""
        words = user_words(directory.gazetteer, [u.name for u in directory.units_by_id.values()])
        return DuplicateIndex(window=DUPLICATE_WINDOW, segmenter=Segmenter(words), places=_area_parents(directory))

    def _make_analyzer(self) -> TextAnalyzer:
        # Every label's probability, not only the top three: probability spread over 停水 / 水质 / 供水 adds up.
        k = len(self._model.labels) if self._model is not None else 3
        return TextAnalyzer(self._model, self._directory.gazetteer, k=k)

    def _load_open_tickets(self, session: Session) -> None:
        since = datetime.now().astimezone() - DUPLICATE_WINDOW
        rows = session.execute(
            select(Ticket.id, Ticket.title, Ticket.text, Ticket.area_id, Ticket.received_at).where(
                Ticket.status.in_(DUPLICATE_STATES), Ticket.received_at >= since
            )
        ).all()
        codes = {a.id: code for code, a in self._directory.areas_by_code.items()}
        self._duplicates.add_many((r.id, f"{r.title} {r.text}", codes.get(r.area_id), r.received_at) for r in rows)

    def refresh(self) -> None:
        """Reload the directory after an admin changed areas, units, categories or the catalogue."""
        with self._services.sessions() as session:
            directory = Directory.load(session)
        with self._lock:
            self._directory = directory
            self._analyzer = self._make_analyzer()
            self._duplicates.set_places(_area_parents(directory))

    @property
    def directory(self) -> Directory:
        return self._directory

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        directory, analyzer = self._directory, self._analyzer
        message = f"{text} {location or ''}".strip()
        analysis = analyzer.analyze(title, message)
        model_scores: dict[str, float] = {}
        for guess in analysis.categories:
            name = resolve(guess.label, directory.categories_by_name)
            if name is not None:
                code = directory.categories_by_name[name][1]
                model_scores[code] = model_scores.get(code, 0.0) + float(guess.probability)
        categories: list[CategorySuggestion] = []
        evidence_words: list[str] = []
        model_choice: str | None = None
        if model_scores:
            model_choice = decode(model_scores, directory.category_parents)[0][0]
            normalised = join_segmented(f"{title} {message}")
            evidence = directory.evidence.score(normalised)
            ranked = decode(mix(model_scores, evidence), directory.category_parents)[:3]
            names = directory.names["category"]
            categories = [
                CategorySuggestion(category_id=directory.categories_by_name[names[code]][0], code=code,
                                   label=names[code], probability=round(mass, 4))
                for code, mass in ranked
            ]
            if categories and categories[0].code != model_choice:
                evidence_words = directory.evidence.words(normalised)
        place = analysis.places[0] if analysis.places else None
        area = directory.areas_by_code.get(place.code) if place else None
        named = next((p for p in analysis.places if p.matched), None)
        suggestion = Suggestion(
            categories=categories,
            kind=analysis.kind,
            urgent=analysis.urgency.urgent,
            urgency_reason=analysis.urgency.reason,
            emergency_line=analysis.urgency.emergency_line,
            area_id=area.id if area else None,
            area_code=area.code if area else None,
            area_name=area.name if area else None,
            place=place_phrase(f"{title}。{message}", named.matched) if named and named.matched else None,
            # the model's own choice only: a choice the catalogue's words changed goes to a person
            auto_dispatch=analysis.auto_dispatch and not evidence_words and bool(categories),
            model_version=getattr(self._model, "version", None),
        )
        choice = directory.route(suggestion.category_id, suggestion.area_id)
        suggestion.unit_id = choice.unit_id
        suggestion.unit_name = choice.unit_name
        suggestion.co_unit_ids = choice.co_unit_ids
        suggestion.route_rule_id = choice.rule_id
        suggestion.route_explanation = choice.explanation
        if evidence_words:
            suggestion.route_explanation += "；分类参考了目录用词：" + "、".join(evidence_words[:5])
        body = f"{title} {text}"
        dups = self._duplicates.query(body, suggestion.area_code, now, k=5)
        if dups:
            rows = session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_([d.ticket_id for d in dups])))
            numbers = {ticket_id: number for ticket_id, number in rows}
            suggestion.duplicates = [
                {"ticket_id": d.ticket_id, "number": numbers.get(d.ticket_id), "score": round(float(d.score), 3)}
                for d in dups
                if d.ticket_id in numbers
            ]
        suggestion.knowledge = [
            {"article_id": article_id, "score": round(float(score), 3)}
            for article_id, score in self._services.knowledge_search(session, body, 3)
        ]
        if suggestion.kind == "consultation" and suggestion.knowledge and (
            suggestion.knowledge[0]["score"] >= KNOWLEDGE_ANSWER_SCORE
        ):
            # A question the knowledge base answers is answered on the line (直接答复), never dispatched unasked.
            suggestion.auto_dispatch = False
        return suggestion

    def remember(self, ticket_id: int, title: str, text: str, area_code: str | None, at: datetime) -> None:
        """A new open ticket joins the duplicate index (called after intake commits)."""
        self._duplicates.add(ticket_id, f"{title} {text}", area_code, at)

    def forget(self, ticket_id: int) -> None:
        self._duplicates.remove(ticket_id)


def load_city_suggester(services: Services) -> Suggester:
    """Load the model from ``HOTLINE_MODEL_DIR``; without one the desk still gets kind, urgency and place."""
    from nlp.classifier import IncompatibleModelError, Model

    model: Model | None = None
    model_dir = services.settings.model_dir
    if (model_dir / "metadata.json").exists():
        try:
            model = Model.load(model_dir)
        except IncompatibleModelError as exc:
            raise SystemExit(f"hotline: {exc}") from exc
        log.info("loaded text model from %s", model_dir)
    else:
        log.warning("no text model in %s: tickets wait unclassified (train one with `hotline nlp train`)", model_dir)
    try:
        return CitySuggester(services, model)
    except Exception:  # an empty database (before seeding) has no directory yet
        log.exception("could not build the city suggester; falling back to manual classification")
        return NullSuggester()


CLOSED_FOR_DUPLICATES = frozenset({"merged", "answered", "transferred", "replied", "closed"})


async def follow_tickets(services: Services) -> None:
    """Keep this process's duplicate index in step with tickets created or closed by any worker (via the bus)."""
    import asyncio

    async for message in services.bus.subscribe():
        suggester = services.suggester
        if not isinstance(suggester, CitySuggester):
            continue
        try:
            if message.get("type") == "receive":
                await asyncio.to_thread(_remember_ticket, services, suggester, int(message["ticket_id"]))
            elif message.get("to_status") in CLOSED_FOR_DUPLICATES:
                suggester.forget(int(message["ticket_id"]))
        except Exception:
            log.exception("could not update the duplicate index for %s", message.get("ticket_id"))


def _remember_ticket(services: Services, suggester: CitySuggester, ticket_id: int) -> None:
    with services.sessions() as session:
        row = session.execute(
            select(Ticket.title, Ticket.text, Area.code, Ticket.received_at)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.id == ticket_id)
        ).first()
    if row is not None:
        suggester.remember(ticket_id, row.title, row.text, row.code, row.received_at)
