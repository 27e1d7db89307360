"""The suggestions of the demo city for a fixed set of messages: what ``test_suggestion_record.py`` compares with
``data/suggestions_before.json``, the same record made by the code before the analysis was made cheaper.

Everything a ticket keeps of its analysis is recorded (categories with their probabilities, place, unit and route,
kind, urgency and its line, duplicates with their scores, knowledge hits with theirs, auto-dispatch), for seed
corpus messages with and without a title or a location, some sent twice (duplicates of the batch), in one batch
as the worker analyses them (``prepare``, then ``suggest`` and ``remember`` per message) and a few alone as the
synchronous intake does. The classifier is a stand-in with fixed, text-dependent probabilities over the seed
corpus's labels: the record checks the suggester, the rules and the searches, and stays valid when the real
classifier's internals change. Knowledge articles are judged in effect on a fixed day.

Write the record with the code to compare against (from its checkout, with its interpreter):
``PYTHONPATH=. python tests/hotline/suggestion_record.py tests/hotline/data/suggestions_before.json``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import zlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy.orm import Session

from hotline.services import Services
from hotline.suggester import CitySuggester
from nlp.classifier import Model
from tests.hotline.routing_fixture import SEED_CORPUS, demo_city

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
KNOWLEDGE_DAY = date(2026, 12, 2)
PLACES = ("澄江街道建设路", "东湖区", "西山区人民路")


class FixedModel:
    """A classifier's interface with fixed answers: each label's score counts the label's characters found in the
    message plus a crc32 of label and message, turned into probabilities (softmax, rounded as the model does)."""

    version = "fixed"
    threshold = 0.3

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)

    def predict_many(self, items: Sequence[tuple[str, str]], k: int = 3) -> list[list[tuple[str, float]]]:
        out = []
        for title, text in items:
            chars = set(f"{title}{text}")
            scores = [sum(ch in chars for ch in label) + zlib.crc32(f"{label}|{title}|{text}".encode()) % 97 / 24
                      for label in self.labels]
            top = max(scores)
            weights = [math.exp(s - top) for s in scores]
            total = sum(weights)
            ranked = sorted(zip(self.labels, weights, strict=True), key=lambda lw: -lw[1])[: max(1, k)]
            out.append([(label, round(w / total, 4)) for label, w in ranked])
        return out


def messages() -> list[tuple[str, str, str | None]]:
    rows = [json.loads(line) for line in SEED_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: list[tuple[str, str, str | None]] = []
    for n, row in enumerate(rows[::4]):
        text = str(row["text"])
        title = text[:10] if n % 5 == 1 else ""
        location = PLACES[n % len(PLACES)] if n % 7 == 3 else None
        out.append((title, text, location))
    # the same incidents reported again, word for word and reworded, later in the batch
    out += [(title, text, location) for title, text, location in out[:60:6]]
    out += [("", f"{text}，到现在还没解决", location) for _, text, location in out[3:90:9]]
    return out


def labels() -> list[str]:
    rows = [json.loads(line) for line in SEED_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted({str(row["label"]) for row in rows})


def record(services: Services) -> list[dict[str, Any]]:
    def knowledge_search(session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        return services.knowledge_search(session, query, limit, on=KNOWLEDGE_DAY)

    suggester = CitySuggester(services.sessions, knowledge_search, cast(Model, FixedModel(labels())))
    batch = messages()
    out: list[dict[str, Any]] = []
    with services.sessions() as session:
        suggester.prepare(batch)
        for n, (title, text, location) in enumerate(batch):
            suggestion = suggester.suggest(session, title, text, location, NOW + timedelta(seconds=n))
            ticket_id = 100_000 + n
            suggester.remember(ticket_id, title, text, suggestion.area_code, NOW + timedelta(seconds=n),
                               number=f"T{ticket_id}")
            out.append(suggestion.to_json())
        for n, (title, text, location) in enumerate(batch[:40:4]):  # alone: the synchronous intake's path
            out.append(suggester.suggest(session, title, text, location, NOW + timedelta(hours=1, seconds=n))
                       .to_json())
    return out


def main(target: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        services = demo_city(f"sqlite:///{Path(tmp) / 'demo.db'}")
        try:
            rows = record(services)
        finally:
            services.engine.dispose()
    Path(target).write_text(json.dumps(rows, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(rows)} suggestions -> {target}")


if __name__ == "__main__":
    main(sys.argv[1])
