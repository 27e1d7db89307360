"""What intake asks about a message: category, kind, urgency, place, unit, duplicates, knowledge answers.

``Suggester`` is the one interface between intake and text analysis. ``NullSuggester`` is what runs when no model
is loaded: the ticket simply waits in the triage queue unclassified. ``CitySuggester`` (in ``hotline.suggester``)
wires the nlp package and the dispatch catalogue together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass
class CategorySuggestion:
    category_id: int | None
    code: str | None
    label: str
    probability: float


@dataclass
class Suggestion:
    categories: list[CategorySuggestion] = field(default_factory=list)
    kind: str | None = None
    urgent: bool = False
    urgency_reason: str | None = None
    emergency_line: str | None = None
    area_id: int | None = None
    area_code: str | None = None
    area_name: str | None = None
    place: str | None = None  # the place as the message names it (金桂园小区3栋2单元), for the ticket's 地点
    unit_id: int | None = None
    unit_name: str | None = None
    co_unit_ids: list[int] = field(default_factory=list)
    route_rule_id: int | None = None
    route_explanation: str = ""
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    knowledge: list[dict[str, Any]] = field(default_factory=list)
    auto_dispatch: bool = False
    model_version: str | None = None

    @property
    def category_id(self) -> int | None:
        return self.categories[0].category_id if self.categories else None

    def to_json(self) -> dict[str, Any]:
        """What the ticket keeps as its ``analysis``: ``dataclasses.asdict`` of it, built field by field (asdict
        deep-copies recursively and cost the worker a tenth of a millisecond per ticket)."""
        out = dict(self.__dict__)
        out["categories"] = [dict(c.__dict__) for c in self.categories]
        out["co_unit_ids"] = list(self.co_unit_ids)
        out["duplicates"] = [dict(d) for d in self.duplicates]
        out["knowledge"] = [dict(k) for k in self.knowledge]
        return out


class Suggester(Protocol):
    def suggest(
        self, session: Session, title: str, text: str, location: str | None, now: datetime
    ) -> Suggestion: ...

    def prepare(self, messages: Sequence[tuple[str, str, str | None]]) -> None:
        """A batch is about to be suggested one by one: analyse its texts in one go (optional speed-up)."""

    def remember(self, ticket_id: int, title: str, text: str, area_code: str | None, at: datetime, *,
                 number: str | None = None) -> dict[str, Any] | None:
        """A ticket this process just made joins its duplicate index (the next message of a batch is compared
        with it). ``number``: its ticket number, for a ticket not committed yet (the worker's batch), which the
        next messages' duplicates name without reading it back. Returns a bus notice that lets the other
        processes index it the same way (``hotline.events.INDEX_NOTICE``), to be published with its events, or
        None."""

    def forget(self, ticket_id: int) -> None:
        """A ticket leaves the duplicate index (its transaction rolled back, or it was closed)."""


class NullSuggester:
    """No model loaded: nothing is guessed, a person classifies the ticket."""

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        return Suggestion()

    def prepare(self, messages: Sequence[tuple[str, str, str | None]]) -> None:
        return None

    def remember(self, ticket_id: int, title: str, text: str, area_code: str | None, at: datetime, *,
                 number: str | None = None) -> dict[str, Any] | None:
        return None

    def forget(self, ticket_id: int) -> None:
        return None
