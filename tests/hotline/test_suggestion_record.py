"""The analysis of the worker's batch gives what it gave before it was made cheaper (categories, place, unit, kind,
urgency, duplicates, knowledge hits, auto-dispatch), message for message: ``data/suggestions_before.json`` was
recorded by ``suggestion_record.py`` with main at 127498e, before the category tree, the duplicate scores, the
knowledge search and the text joins were made cheaper. Re-record it only for a change meant to alter suggestions."""

from __future__ import annotations

import json
from pathlib import Path

from tests.hotline.routing_fixture import demo_city
from tests.hotline.suggestion_record import record

BEFORE = Path(__file__).resolve().parent / "data" / "suggestions_before.json"


def test_every_suggestion_is_the_one_the_code_before_made(tmp_path: Path) -> None:
    services = demo_city(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        now = json.loads(json.dumps(record(services), ensure_ascii=False))
    finally:
        services.engine.dispose()
    before = json.loads(BEFORE.read_text(encoding="utf-8"))
    assert len(now) == len(before)
    changed = [n for n, (a, b) in enumerate(zip(now, before, strict=True)) if a != b]
    first = changed[0] if changed else None
    assert not changed, f"{len(changed)} suggestions changed, first #{first}: {now[first]} != {before[first]}"
