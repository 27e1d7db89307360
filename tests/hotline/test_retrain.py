"""`hotline nlp retrain` learns from the city's own finished tickets, with the agents' corrections, and judges the
new model on tickets neither model has seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from hotline.nlp_commands import CityRecord, city_records, split_history
from hotline.services import Services
from nlp.classifier import Record
from tests.conftest import City, act, submit


def test_retraining_reads_the_final_category_as_its_path_including_corrections(
    client: TestClient, city: City, services: Services
) -> None:
    corrected = submit(client, city, text="建设路摊贩占道经营，晚上还很吵")
    assert act(client, city, "agent", corrected["id"], "recategorize", category_id=city.ids["cat:zhandao"],
               note="更正分类").status_code == 200
    assert act(client, city, "agent", corrected["id"], "answer", note="已告知城管投诉渠道").status_code == 200
    open_one = submit(client, city, text="小区门口路灯不亮")  # still open: not a training example
    with services.sessions() as session:
        records = city_records(session)
    by_ticket = {r.ticket_id: r.record.label for r in records}
    assert by_ticket[corrected["id"]] == "城市管理/占道经营"  # the corrected category, under its first level
    assert open_one["id"] not in by_ticket


def _history(n: int, start: datetime) -> list[CityRecord]:
    return [CityRecord(Record(text=f"诉求{i}", label="城乡建设"), i, start + timedelta(hours=i)) for i in range(n)]


def test_the_held_out_slice_is_newer_than_the_current_model() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    history = _history(200, start)
    trained_at = start + timedelta(hours=150)
    train, held, seen = split_history(history, 0.2, trained_at)
    assert not seen and len(held) == 40
    assert all(r.received_at > trained_at for r in held)
    assert {r.ticket_id for r in train}.isdisjoint(r.ticket_id for r in held)
    assert len(train) + len(held) == 200


def test_without_enough_unseen_tickets_the_report_says_the_old_model_saw_them() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    history = _history(100, start)
    _, held, seen = split_history(history, 0.2, start + timedelta(hours=95))  # only 4 tickets after it
    assert seen and [r.ticket_id for r in held] == list(range(80, 100))  # the newest fifth
    _, held, seen = split_history(history, 0.2, None)  # no current model: nothing to be unfair to
    assert not seen and len(held) == 20
