"""What intake learns from the city's directory: place, route, duplicates (the classifier is tested in nlp)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from hotline.app import create_app
from hotline.services import Services
from hotline.suggester import DUPLICATE_EXPIRY_EVERY, DUPLICATE_WINDOW, CitySuggester
from tests.conftest import City


@pytest.fixture
def city_client(services: Services, city: City) -> Iterator[TestClient]:
    services.suggester = CitySuggester(services.sessions, services.knowledge_search, None)
    with TestClient(create_app(services.settings, services)) as c:
        yield c


def test_place_is_found_and_routed_by_the_catalogue(services: Services, city: City) -> None:
    suggester = CitySuggester(services.sessions, services.knowledge_search, None)
    choice = suggester.directory.route(city.ids["cat:zhandao"], city.ids["area:cj"])
    assert choice.unit_id == city.ids["unit:cjjd"] and choice.co_unit_ids == [city.ids["unit:cgj"]]
    assert "澄江街道" in choice.explanation
    elsewhere = suggester.directory.route(city.ids["cat:zhandao"], city.ids["area:xs"])
    assert elsewhere.unit_id == city.ids["unit:cgj"]
    assert suggester.directory.route(None, None).unit_id is None


def test_intake_fills_place_kind_and_urgency(city_client: TestClient, city: City) -> None:
    r = city_client.post("/api/intake", headers=city.headers("agent"),
                         json={"channel": "phone", "text": "我要投诉，澄江街道建设路有人占道经营，堵住了人行道"})
    t = r.json()
    assert t["area"]["code"] == "mh-dh-cj"
    assert t["kind"] == "complaint"
    assert t["analysis"]["categories"] == []  # no model loaded: a person classifies it
    gas = city_client.post("/api/intake", headers=city.headers("agent"),
                           json={"channel": "phone", "text": "东湖区一栋楼里闻到很浓的煤气味，怀疑燃气泄漏"}).json()
    assert gas["urgent"] is True and gas["emergency_line"] == "119"


def test_a_second_report_of_one_incident_suggests_the_first(
    city_client: TestClient, city: City, services: Services
) -> None:
    h = city.headers("agent")
    first = city_client.post("/api/intake", headers=h, json={
        "channel": "phone", "text": "澄江街道建设路水管爆裂，整条路都停水了，什么时候恢复供水"}).json()
    suggester = services.suggester
    assert isinstance(suggester, CitySuggester)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not suggester._duplicates.query("建设路停水", "mh-dh-cj"):
        time.sleep(0.05)  # the bus hands the new ticket to the index after the commit
    second = city_client.post("/api/intake", headers=h, json={
        "channel": "wechat", "text": "建设路停水好几个小时了，澄江街道这边水管爆了吗，什么时候来水"}).json()
    assert [d["ticket_id"] for d in second["analysis"]["duplicates"]][:1] == [first["id"]]


def test_the_analysis_kept_on_the_ticket_is_asdict_of_the_suggestion() -> None:
    from dataclasses import asdict

    from hotline.suggestion import CategorySuggestion, Suggestion

    full = Suggestion(categories=[CategorySuggestion(1, "15", "城市管理", 0.8),
                                  CategorySuggestion(None, None, "其他", 0.1)],
                      kind="complaint", co_unit_ids=[2, 3], duplicates=[{"ticket_id": 1, "number": "1", "score": 0.5}],
                      knowledge=[{"article_id": 4, "score": 12.0}], auto_dispatch=True)
    for suggestion in (full, Suggestion()):
        assert suggestion.to_json() == asdict(suggestion)
    kept = full.to_json()
    kept["categories"][0]["label"], kept["duplicates"][0]["score"] = "改了", 0.9  # a copy, not the suggestion itself
    assert full.categories[0].label == "城市管理" and full.duplicates[0]["score"] == 0.5


def test_tickets_left_open_past_the_duplicate_window_leave_the_index(services: Services, city: City) -> None:
    suggester = CitySuggester(services.sessions, services.knowledge_search, None)
    now = datetime.now(UTC)
    suggester.remember(9001, "路灯", "建设路的路灯坏了一个月了", None, now - DUPLICATE_WINDOW - timedelta(days=1))
    suggester.remember(9002, "路灯", "建设路的路灯今天又不亮了", None, now)
    assert 9001 in suggester._duplicates  # the hourly sweep has not come round yet
    assert suggester.expire_old(now + DUPLICATE_EXPIRY_EVERY) == 1
    assert 9001 not in suggester._duplicates and 9002 in suggester._duplicates
    assert suggester.expire_old(now + DUPLICATE_EXPIRY_EVERY + timedelta(minutes=1)) == 0  # not again within the hour
