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
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotline import metrics
from hotline.events import INDEX_NOTICE
from hotline.models import Area, Ticket
from hotline.routing_snapshot import RoutingSnapshot
from hotline.states import IN_PROGRESS_STATES, sorted_states
from hotline.suggestion import CategorySuggestion, NullSuggester, Suggester, Suggestion
from nlp.analyzer import Analysis, TextAnalyzer
from nlp.classifier import IncompatibleModelError, Model
from nlp.duplicates import DuplicateIndex
from nlp.evidence import CategoryTree, mix
from nlp.places import place_phrase, user_words
from nlp.segment import Segmenter, join_segmented
from nlp.taxonomy import resolve

#: (session, query, limit) -> [(article id, score)], the knowledge base search of this process
KnowledgeSearch = Callable[[Session, str, int], list[tuple[int, float]]]

log = logging.getLogger(__name__)
DUPLICATE_WINDOW = timedelta(days=7)
#: BM25 score from which the best knowledge article is taken to answer a consultation on the phone
KNOWLEDGE_ANSWER_SCORE = 10.0
#: how often the duplicate index drops the tickets older than its window (a ticket left open for weeks would
#: otherwise stay indexed, never matching, for the life of the process; the sweep is O(indexed tickets))
DUPLICATE_EXPIRY_EVERY = timedelta(hours=1)


class _Categories:
    """The directory's category tree, and the model's labels resolved to its codes once: the model scores every
    label for every message, and resolving each path again cost more than the model call."""

    def __init__(self, directory: RoutingSnapshot) -> None:
        self._by_name = directory.categories_by_name
        self.tree = CategoryTree(directory.category_parents)
        self._codes: dict[str, str | None] = {}

    def code(self, label: str) -> str | None:
        """The code of the deepest category along the label's path that the city knows, or None."""
        try:
            return self._codes[label]
        except KeyError:
            name = resolve(label, self._by_name)
            code = self._codes[label] = self._by_name[name][1] if name is not None else None
            return code

    def model_scores(self, analysis: Analysis) -> dict[str, float]:
        """Category code -> the model's probability summed over the labels that resolve to it."""
        scores: dict[str, float] = {}
        for guess in analysis.categories:
            if not guess.probability:
                continue  # rounded to 0: nothing to add, and the tree walk follows only categories with mass
            code = self.code(guess.label)
            if code is not None:
                scores[code] = scores.get(code, 0.0) + float(guess.probability)
        return scores


class CitySuggester:
    def __init__(self, sessions: sessionmaker[Session], knowledge_search: KnowledgeSearch, model: Model | None) -> None:
        self._sessions = sessions
        self._knowledge_search = knowledge_search
        self._model = model
        self._lock = threading.Lock()
        self._prepared: dict[tuple[str, str], Analysis] = {}
        #: numbers of the tickets the running batch made, not committed yet (``remember(number=...)``)
        self._numbers: dict[int, str] = {}
        #: the duplicate terms of the running batch's texts, cut once for the search and again used by ``remember``
        self._terms: dict[str, Counter[str]] = {}
        self._expired_at = datetime.now(UTC)
        with sessions() as session:
            self._directory = RoutingSnapshot.load(session)
            self._analyzer = self._make_analyzer()
            self._categories = _Categories(self._directory)
            self._duplicates = self._make_duplicate_index(self._directory)
            self._load_open_tickets(session)

    @property
    def model(self) -> Model | None:
        """The loaded classifier (None: tickets wait to be classified by a person); readiness asks for it."""
        return self._model

    @staticmethod
    def _make_duplicate_index(directory: RoutingSnapshot) -> DuplicateIndex:
        """Duplicates are looked up with the city's words (place and unit names, 燃气泄漏 …) kept whole, and with
        the area hierarchy, so a report naming the community matches one naming its street."""
        words = user_words(directory.gazetteer, [u.name for u in directory.units_by_id.values()])
        return DuplicateIndex(window=DUPLICATE_WINDOW, segmenter=Segmenter(words), places=directory.area_parents())

    def _make_analyzer(self) -> TextAnalyzer:
        # Every label's probability, not only the top three: probability spread over 停水 / 水质 / 供水 adds up.
        k = len(self._model.labels) if self._model is not None else 3
        return TextAnalyzer(self._model, self._directory.gazetteer, k=k)

    def _load_open_tickets(self, session: Session) -> None:
        since = datetime.now().astimezone() - DUPLICATE_WINDOW
        rows = session.execute(
            select(Ticket.id, Ticket.title, Ticket.text, Ticket.area_id, Ticket.received_at).where(
                Ticket.status.in_(sorted_states(IN_PROGRESS_STATES)), Ticket.received_at >= since
            )
        ).all()
        codes = {a.id: code for code, a in self._directory.areas_by_code.items()}
        self._duplicates.add_many((r.id, f"{r.title} {r.text}", codes.get(r.area_id), r.received_at) for r in rows)

    def refresh(self) -> None:
        """Reload the directory after an admin changed areas, units, categories or the catalogue."""
        with self._sessions() as session:
            directory = RoutingSnapshot.load(session)
        with self._lock:
            self._directory = directory
            self._analyzer = self._make_analyzer()
            self._categories = _Categories(directory)
            self._duplicates.set_places(directory.area_parents())

    @property
    def directory(self) -> RoutingSnapshot:
        return self._directory

    def prepare(self, messages: Sequence[tuple[str, str, str | None]]) -> None:
        """Classify a batch in one model call (the worker's batches); ``suggest`` then takes the ready analyses."""
        items = [(title, f"{text} {location or ''}".strip()) for title, text, location in messages]
        with metrics.timed(metrics.CLASSIFIER_LATENCY, call="batch"):
            analyses = self._analyzer.analyze_many(items)
        metrics.CLASSIFIED_MESSAGES.inc(len(items))
        with self._lock:
            self._prepared = dict(zip(items, analyses, strict=True))
            self._numbers = {}  # the previous batch is committed (or its tickets forgotten)
            self._terms = {}

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        with metrics.timed(metrics.ANALYSIS_LATENCY):
            return self._suggest(session, title, text, location, now)

    def _classify(self, analyzer: TextAnalyzer, title: str, message: str) -> Analysis:
        with metrics.timed(metrics.CLASSIFIER_LATENCY, call="one"):
            analysis = analyzer.analyze(title, message)
        metrics.CLASSIFIED_MESSAGES.inc()
        return analysis

    def _suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        directory, analyzer, known = self._directory, self._analyzer, self._categories
        message = f"{text} {location or ''}".strip()
        with self._lock:
            prepared = self._prepared.pop((title, message), None)
        analysis = prepared or self._classify(analyzer, title, message)
        model_scores = known.model_scores(analysis)
        categories: list[CategorySuggestion] = []
        evidence_words: list[str] = []
        model_choice: str | None = None
        if model_scores:
            model_choice = known.tree.decode(model_scores)[0][0]
            normalised = join_segmented(f"{title} {message}")
            evidence = directory.evidence.score(normalised)
            ranked = known.tree.decode(mix(model_scores, evidence))[:3]
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
        text_terms = self._duplicates.terms(text)
        if prepared is not None:  # a batch's message: its ticket joins the index next (``remember``)
            with self._lock:
                self._terms[text] = text_terms
        terms = text_terms + self._duplicates.terms(title) if title else text_terms
        dups = self._duplicates.query(body, suggestion.area_code, now, k=5, terms=terms)
        if dups:
            with self._lock:
                numbers = {d.ticket_id: self._numbers[d.ticket_id] for d in dups if d.ticket_id in self._numbers}
            unknown = [d.ticket_id for d in dups if d.ticket_id not in numbers]
            if unknown:
                rows = session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(unknown)))
                numbers.update({ticket_id: number for ticket_id, number in rows})
            suggestion.duplicates = [
                {"ticket_id": d.ticket_id, "number": numbers.get(d.ticket_id), "score": round(float(d.score), 3)}
                for d in dups
                if d.ticket_id in numbers
            ]
        suggestion.knowledge = [
            {"article_id": article_id, "score": round(float(score), 3)}
            for article_id, score in self._knowledge_search(session, body, 3)
        ]
        if suggestion.kind == "consultation" and suggestion.knowledge and (
            suggestion.knowledge[0]["score"] >= KNOWLEDGE_ANSWER_SCORE
        ):
            # A question the knowledge base answers is answered on the line (直接答复), never dispatched unasked.
            suggestion.auto_dispatch = False
        return suggestion

    def remember(self, ticket_id: int, title: str, text: str, area_code: str | None, at: datetime, *,
                 number: str | None = None) -> dict[str, Any] | None:
        """A new open ticket joins the duplicate index (after intake commits, or as the worker's batch makes it:
        then with its ``number``, which the batch's next duplicates name before it is committed). Returns its
        ``INDEX_NOTICE`` for the other processes (``remember_noticed``)."""
        with self._lock:
            text_terms = self._terms.pop(text, None)
        terms = text_terms + self._duplicates.terms(title) if text_terms is not None and title else text_terms
        self._duplicates.add(ticket_id, f"{title} {text}", area_code, at, terms=terms)
        if number is not None:
            with self._lock:
                self._numbers[ticket_id] = number
        self.expire_old(datetime.now(UTC))
        entry = self._duplicates.entry(ticket_id)
        if entry is None:
            return None
        words, weights = entry
        return {"type": INDEX_NOTICE, "ticket_id": ticket_id, "area_code": area_code, "at": at.isoformat(),
                "terms": words, "weights": weights}

    def remember_noticed(self, notice: Mapping[str, Any]) -> None:
        """A ticket another process made joins this index as that process indexed it (its ``remember``'s notice).
        Raises ValueError (or KeyError, TypeError) for a notice that is not one."""
        at = datetime.fromisoformat(str(notice["at"]))
        if at.tzinfo is None:
            raise ValueError("an index notice's time needs its UTC offset")
        area_code = notice.get("area_code")
        self._duplicates.add_entry(int(notice["ticket_id"]), list(notice["terms"]), list(notice["weights"]),
                                   str(area_code) if area_code is not None else None, at)
        self.expire_old(datetime.now(UTC))

    def knows(self, ticket_id: int) -> bool:
        """Whether the ticket is in this process's duplicate index."""
        return ticket_id in self._duplicates

    def expire_old(self, now: datetime) -> int:
        """Drop the indexed tickets older than the duplicate window, at most once per ``DUPLICATE_EXPIRY_EVERY``;
        returns how many were dropped."""
        with self._lock:
            if now - self._expired_at < DUPLICATE_EXPIRY_EVERY:
                return 0
            self._expired_at = now
        return self._duplicates.expire(now)

    def forget(self, ticket_id: int) -> None:
        self._duplicates.remove(ticket_id)
        with self._lock:
            self._numbers.pop(ticket_id, None)


def load_city_suggester(
    model_dir: Path, sessions: sessionmaker[Session], knowledge_search: KnowledgeSearch
) -> Suggester:
    """Load the model from ``HOTLINE_MODEL_DIR``; without one the desk still gets kind, urgency and place."""
    model: Model | None = None
    if (model_dir / "metadata.json").exists():
        try:
            model = Model.load(model_dir)
        except IncompatibleModelError as exc:
            raise SystemExit(f"hotline: {exc}") from exc
        log.info("loaded text model from %s", model_dir)
    else:
        log.warning("no text model in %s: tickets wait unclassified (train one with `hotline nlp train`)", model_dir)
    try:
        return CitySuggester(sessions, knowledge_search, model)
    except Exception:  # an empty database (before seeding) has no directory yet
        log.exception("could not build the city suggester; falling back to manual classification")
        return NullSuggester()


def remember_tickets(sessions: sessionmaker[Session], suggester: CitySuggester, ticket_ids: Sequence[int]) -> None:
    """Tickets some process created join this process's duplicate index, in the order given, read in one
    statement (a ticket gone meanwhile is left out)."""
    with sessions() as session:
        rows = {row.id: row for row in session.execute(
            select(Ticket.id, Ticket.title, Ticket.text, Area.code, Ticket.received_at)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.id.in_(set(ticket_ids)))
        )}
    for ticket_id in ticket_ids:
        row = rows.get(ticket_id)
        if row is not None:
            suggester.remember(ticket_id, row.title, row.text, row.code, row.received_at)
