"""One message's analysis: category (the classifier), kind, urgency and places (the rules), together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nlp.classifier import Model
from nlp.places import Gazetteer, PlaceMatch
from nlp.signals import NOT_URGENT, Urgency, detect_kind_with_cue, detect_urgency


@dataclass(frozen=True)
class CategoryGuess:
    label: str
    probability: float


@dataclass
class Analysis:
    categories: list[CategoryGuess] = field(default_factory=list)
    kind: str = "complaint"
    urgency: Urgency = NOT_URGENT
    places: list[PlaceMatch] = field(default_factory=list)
    auto_dispatch: bool = False
    kind_cue: str | None = None


class TextAnalyzer:
    """Category (model), kind, urgency and places of one message.

    ``auto_dispatch`` is True only when the model's top probability clears the threshold chosen at training
    time (tickets above it were >= 97 % correct on validation data) *and* the message is not urgent: an urgent
    message always goes to a person first.
    """

    def __init__(self, model: Model | None = None, gazetteer: Gazetteer | None = None, k: int = 3) -> None:
        self.model = model
        self.gazetteer = gazetteer
        self.k = k

    def analyze(self, title: str, text: str) -> Analysis:
        return self.analyze_many([(title, text)])[0]

    def analyze_many(self, items: Sequence[tuple[str, str]]) -> list[Analysis]:
        """Batch form of ``analyze`` (one classifier call for all messages)."""
        guesses: list[list[tuple[str, float]]] = (
            self.model.predict_many(items, k=self.k) if self.model is not None else [[] for _ in items]
        )
        out = []
        for (title, text), top in zip(items, guesses, strict=True):
            categories = [CategoryGuess(label, p) for label, p in top]
            kind, cue = detect_kind_with_cue(title, text)
            urgency = detect_urgency(title, text)
            places = self.gazetteer.find(f"{title}。{text}") if self.gazetteer is not None else []
            auto = bool(
                self.model is not None
                and categories
                and categories[0].probability >= self.model.threshold
                and not urgency.urgent
            )
            out.append(Analysis(categories, kind, urgency, places, auto, cue))
        return out
