"""Unit scorecards: the figures, the composite score, and the drill-down to every ticket behind a figure."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pydantic import ValidationError
from pydantic_settings import SettingsError

from hotline.errors import Invalid
from hotline.scorecards import compute_scorecards, request_weights
from hotline.services import Services
from hotline.settings import Settings
from routing.calendar import WorkCalendar
from routing.scorecards import EventRow, assess, check_score_weights, composite_score, percentile, rank_key
from tests.conftest import City, act, submit

CAL = WorkCalendar()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 90) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([float(i) for i in range(1, 11)], 90) == 9.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_composite_score_weights_and_missing_rates() -> None:
    score, used = composite_score({"response": 1.0, "on_time": 0.5, "resolution": 0.5, "satisfaction": 0.8})
    assert score == pytest.approx(100 * (0.1 * 1.0 + 0.3 * 0.5 + 0.3 * 0.5 + 0.3 * 0.8))
    assert used == {"response": 0.1, "on_time": 0.3, "resolution": 0.3, "satisfaction": 0.3}
    # callbacks still pending: those rates are left out and the rest renormalised
    score, used = composite_score({"response": 1.0, "on_time": 1.0, "resolution": None, "satisfaction": None})
    assert score == 100.0 and used == {"response": 0.25, "on_time": 0.75}
    # timeliness counts: 0 % on time cannot score 100, and without any on-time outcome there is no score at all
    assert composite_score({"response": 1.0, "on_time": 0.0})[0] == 25.0
    assert composite_score({"response": 1.0, "on_time": None}) == (None, {})
    assert composite_score({"response": None}) == (None, {})
    with pytest.raises(ValueError):
        composite_score({"response": 1.0, "on_time": 1.0}, {"response": -1.0})


def at(hour: int, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=CAL.tz)


def ev(id_: int, type_: str, when: datetime, **data: Any) -> EventRow:
    return EventRow(id_, type_, None, data, when)


def test_assess_walks_one_assignment() -> None:
    events = [
        ev(1, "dispatch", at(9), unit_id=7, sign_due=at(11).isoformat(), reply_due=at(9, 4).isoformat()),
        ev(2, "sign", at(10), on_time=True),
        ev(3, "reply", at(15, 2), on_time=True),
        ev(4, "callback", at(16, 2), satisfaction="basically_satisfied", solved=True),
    ]
    a = assess(events, 7, at(0), at(0, 31), at(12, 10), CAL)
    assert a is not None
    assert (a.response, a.on_time, a.resolution, a.satisfaction) == ("met", "met", "met", "met")
    assert a.handling_hours == 12.0  # 9:00 Tue → 15:00 Wed: 7 + 5 working hours
    assert assess(events, 8, at(0), at(0, 31), at(12, 10), CAL) is None  # another unit
    late = [events[0], ev(5, "return", at(14), note="x"), ev(6, "dispatch", at(15), unit_id=9)]
    b = assess(late, 7, at(0), at(0, 31), at(12, 10), CAL)
    assert b is not None and b.response == "missed" and b.on_time == "na" and b.send_backs == [5]
    silent = assess(events[:1], 7, at(0), at(0, 31), at(12, 10), CAL)
    assert silent is not None and silent.response == "missed" and silent.on_time == "missed"
    fresh = assess(events[:1], 7, at(0), at(0, 31), at(10), CAL)
    assert fresh is not None and fresh.response == "pending" and fresh.on_time == "pending"


def handled(client: TestClient, city: City, satisfaction: str, solved: bool) -> dict[str, Any]:
    t = submit(client, city)
    act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    act(client, city, "cjjd", t["id"], "sign")
    act(client, city, "cjjd", t["id"], "reply", note="已处理完毕")
    r = act(client, city, "agent", t["id"], "callback", satisfaction=satisfaction, solved=solved)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_scorecards_rank_explain_and_export(client: TestClient, city: City) -> None:
    good = handled(client, city, "satisfied", True)
    poor = handled(client, city, "unsatisfied", False)
    bounced = submit(client, city)
    act(client, city, "agent", bounced["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    act(client, city, "cjjd", bounced["id"], "return", note="不属于本街道")
    act(client, city, "dispatcher", bounced["id"], "refuse_return", note="属地管理")
    other = submit(client, city)
    act(client, city, "agent", other["id"], "dispatch", unit_id=city.ids["unit:zjj"])

    today = datetime.now(UTC).astimezone(CAL.tz).date()
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    r = client.get("/api/scorecards", params=period, headers=city.headers("supervisor"))
    assert r.status_code == 200, r.text
    units = {u["unit_id"]: u for u in r.json()["units"]}
    f = units[city.ids["unit:cjjd"]]["figures"]
    assert f["dispatched"] == 3
    assert f["response"] == {"met": 3, "missed": 0, "pending": 0}  # the send-back came before the sign deadline
    assert f["resolution_rate"] == 0.5 and f["satisfaction_rate"] == 0.5 and f["callbacks"] == 2
    assert f["send_backs"] == 1 and f["send_backs_refused"] == 1 and f["overdue"] == 0
    assert f["on_time"] == {"met": 2, "missed": 0, "pending": 1}
    assert f["score"] == pytest.approx(100 * (0.1 * 1 + 0.3 * 1 + 0.3 * 0.5 + 0.3 * 0.5))
    assert units[city.ids["unit:zjj"]]["figures"]["dispatched"] == 1
    assert r.json()["units"][0]["rank"] == 1

    drill = client.get(f"/api/scorecards/{city.ids['unit:cjjd']}/tickets",
                       params={**period, "figure": "satisfaction_rate"}, headers=city.headers("cjjd"))
    assert drill.status_code == 200, drill.text
    by_number = {t["number"]: t for t in drill.json()["tickets"]}
    assert by_number[good["number"]]["outcome"] == "met" and by_number[poor["number"]]["outcome"] == "missed"
    assert by_number[poor["number"]]["value"] == "unsatisfied" and by_number[poor["number"]]["event_id"]
    assert drill.json()["counts"] == {"met": 1, "missed": 1, "pending": 1}
    refused = client.get(f"/api/scorecards/{city.ids['unit:cjjd']}/tickets",
                         params={**period, "figure": "send_backs_refused"}, headers=city.headers("supervisor"))
    assert [t["ticket_id"] for t in refused.json()["tickets"]] == [bounced["id"]]
    # a unit sees its own scorecard only; the ranking is for supervisors
    own = client.get(f"/api/scorecards/{city.ids['unit:cjjd']}", params=period, headers=city.headers("cjjd"))
    assert own.status_code == 200 and own.json()["units"][0]["figures"]["dispatched"] == 3
    assert client.get(f"/api/scorecards/{city.ids['unit:cjjd']}", headers=city.headers("zjj")).status_code == 403
    assert client.get("/api/scorecards", headers=city.headers("cjjd")).status_code == 403
    assert client.get("/api/scorecards", params={"from": "2026-12-02", "to": "2026-12-01"},
                      headers=city.headers("supervisor")).status_code == 422
    assert client.get(f"/api/scorecards/{city.ids['unit:cjjd']}/tickets", params={"figure": "vibes"},
                      headers=city.headers("supervisor")).status_code == 422

    xlsx = client.get("/api/scorecards.xlsx", params=period, headers=city.headers("supervisor"))
    assert xlsx.status_code == 200
    wb = load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["单位考核", "工单明细"]
    header = [c.value for c in wb["单位考核"][2]]
    assert header[:4] == ["排名", "单位", "派单量", "响应率"] and header[-1] == "综合得分"
    numbers = {row[1] for row in wb["工单明细"].iter_rows(min_row=2, values_only=True)}
    assert {good["number"], poor["number"], bounced["number"], other["number"]} <= numbers
    detail = list(wb["工单明细"].iter_rows(values_only=True))
    column = detail[0].index("是否解决")
    solved = {row[1]: row[column] for row in detail[1:] if row[0] == "澄江街道办事处"}
    assert solved == {good["number"]: "是", poor["number"]: "否", bounced["number"]: "待回访"}
    earned = detail[0].index("计入综合得分")
    assert sum(row[earned] for row in detail[1:] if row[0] == "澄江街道办事处") == pytest.approx(f["score"], abs=0.02)


def test_the_composite_is_explained_per_ticket(client: TestClient, city: City) -> None:
    """The 综合得分 drill-down: what each ticket earned and could have earned, per rate; the sum is the score."""
    good = handled(client, city, "satisfied", True)
    poor = handled(client, city, "unsatisfied", False)
    today = datetime.now(UTC).astimezone(CAL.tz).date()
    period = {"from": today.isoformat(), "to": today.isoformat()}
    unit = city.ids["unit:cjjd"]
    score = client.get(f"/api/scorecards/{unit}", params=period, headers=city.headers("supervisor")).json()
    total = score["units"][0]["figures"]["score"]
    drill = client.get(f"/api/scorecards/{unit}/tickets", params={**period, "figure": "score"},
                       headers=city.headers("supervisor"))
    assert drill.status_code == 200, drill.text
    assert drill.json()["label"] == "综合得分"
    rows = {t["number"]: t for t in drill.json()["tickets"]}
    assert rows[good["number"]]["outcome"] == "met" and rows[poor["number"]]["outcome"] == "missed"
    assert sum(t["value"]["earned"] for t in rows.values()) == pytest.approx(total, abs=0.02)
    lost = rows[poor["number"]]["value"]["rates"]
    assert lost["resolution"] == {"outcome": "missed", "earned": 0.0, "possible": 15.0}
    assert lost["on_time"]["earned"] == lost["on_time"]["possible"] == 15.0


def test_doing_nothing_never_ranks_first(client: TestClient, city: City, services: Services) -> None:
    """Seen on the demo city: 市住建局 ranked first with 100.00 on one ticket it only sent back, and a unit with 0 %
    on time and one overdue ticket scored 100.00. A send-back re-dispatched elsewhere decides no on-time outcome:
    no score ("no data"); an overdue ticket signed in time scores the response only, far from 100."""
    bounced = submit(client, city)
    act(client, city, "agent", bounced["id"], "dispatch", unit_id=city.ids["unit:zjj"])
    act(client, city, "zjj", bounced["id"], "return", note="不属于本局职责")
    act(client, city, "dispatcher", bounced["id"], "dispatch", unit_id=city.ids["unit:cgj"], note="改派城管局")
    late = submit(client, city)
    act(client, city, "agent", late["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    act(client, city, "cjjd", late["id"], "sign")
    now = datetime.now(UTC)
    with services.sessions() as s:
        cards, _ = compute_scorecards(s, CAL, now - timedelta(days=1), now + timedelta(days=1),
                                      now + timedelta(days=30))
    figures = {c.unit_id: c.figures() for c in cards}
    slacker = figures[city.ids["unit:zjj"]]
    assert slacker["response_rate"] == 1.0 and slacker["on_time_rate"] is None and slacker["score"] is None
    overdue = figures[city.ids["unit:cjjd"]]
    assert overdue["on_time_rate"] == 0.0 and overdue["overdue"] == 1
    assert overdue["score"] == 25.0
    assert cards[-1].unit_id == city.ids["unit:zjj"]  # no data ranks last


def test_a_score_of_zero_ranks_above_no_data(client: TestClient, city: City, services: Services) -> None:
    """cjjd never signed (score 0.0); cgj had nothing dispatched (no score) and must not outrank it."""
    t = submit(client, city)
    act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    assert city.ids["unit:cgj"] < city.ids["unit:cjjd"]  # the tie-break by id would favour cgj
    now = datetime.now(UTC)
    with services.sessions() as s:
        cards, _ = compute_scorecards(s, CAL, now - timedelta(days=1), now + timedelta(days=1),
                                      now + timedelta(days=30), unit_ids=[city.ids["unit:cgj"], city.ids["unit:cjjd"]])
    assert [(c.unit_id, c.figures()["score"]) for c in cards] == [(city.ids["unit:cjjd"], 0.0),
                                                                   (city.ids["unit:cgj"], None)]
    assert rank_key(0.0, 9) < rank_key(None, 1) and rank_key(50.0, 9) < rank_key(0.0, 1)


def test_each_round_of_a_reopened_ticket_counts(client: TestClient, city: City, services: Services) -> None:
    """Dispatched to cjjd, unsatisfied, reopened and dispatched to cjjd again, then satisfied: two assignments."""
    t = handled(client, city, "unsatisfied", False)
    assert act(client, city, "supervisor", t["id"], "reopen", note="回访不满意，重办").status_code == 200
    act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    act(client, city, "cjjd", t["id"], "sign")
    act(client, city, "cjjd", t["id"], "reply", note="再次处理完毕")
    act(client, city, "agent", t["id"], "callback", satisfaction="satisfied", solved=True)
    today = datetime.now(UTC).astimezone(CAL.tz).date()
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    r = client.get(f"/api/scorecards/{city.ids['unit:cjjd']}", params=period, headers=city.headers("supervisor"))
    f = r.json()["units"][0]["figures"]
    assert f["dispatched"] == 2 and f["callbacks"] == 2
    assert f["resolution_rate"] == 0.5 and f["satisfaction_rate"] == 0.5
    drill = client.get(f"/api/scorecards/{city.ids['unit:cjjd']}/tickets",
                       params={**period, "figure": "satisfaction_rate"}, headers=city.headers("supervisor")).json()
    assert sorted(row["outcome"] for row in drill["tickets"]) == ["met", "missed"]
    assert {row["ticket_id"] for row in drill["tickets"]} == {t["id"]}


def test_an_unreachable_close_is_neither_solved_nor_unsolved() -> None:
    events = [
        ev(1, "dispatch", at(9), unit_id=7, sign_due=at(11).isoformat(), reply_due=at(9, 4).isoformat()),
        ev(2, "sign", at(10), on_time=True),
        ev(3, "reply", at(15, 2), on_time=True),
        ev(4, "close", at(16, 3), unreachable=True, solved=None, satisfaction=None),
    ]
    a = assess(events, 7, at(0), at(0, 31), at(12, 10), CAL)
    assert a is not None and (a.resolution, a.satisfaction) == ("na", "na")
    pending = assess(events[:3], 7, at(0), at(0, 31), at(12, 10), CAL)
    assert pending is not None and pending.resolution == "pending"


def test_the_citys_default_weights_are_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_SCORE_WEIGHTS", '{"response": 0.2, "resolution": 0.4, "satisfaction": 0.4}')
    city_weights = Settings(demo=True).score_weights
    assert city_weights == {"response": 0.2, "on_time": 0.0, "resolution": 0.4, "satisfaction": 0.4}
    assert request_weights({}, city_weights) == city_weights  # the request gives none
    assert request_weights({"response": None, "resolution": None}, city_weights) == city_weights
    assert request_weights({"response": 1.0}, city_weights) == {"response": 1.0, "on_time": 0.0, "resolution": 0.4,
                                                               "satisfaction": 0.4}
    with pytest.raises(Invalid):
        request_weights({"response": 0.0, "resolution": 0.0, "satisfaction": 0.0}, city_weights)
    with pytest.raises(Invalid):
        request_weights({"response": -1.0}, city_weights)
    monkeypatch.setenv("HOTLINE_SCORE_WEIGHTS", '{"response": 1}')
    assert Settings(demo=True).score_weights == {"response": 1.0, "on_time": 0.0, "resolution": 0.0,
                                                 "satisfaction": 0.0}
    for bad in ('{"response": -0.1, "resolution": 1}', '{"response": 0, "resolution": 0}', '{"speed": 1}'):
        monkeypatch.setenv("HOTLINE_SCORE_WEIGHTS", bad)
        with pytest.raises(ValidationError):
            Settings(demo=True)
    monkeypatch.setenv("HOTLINE_SCORE_WEIGHTS", "not json")
    with pytest.raises(SettingsError):
        Settings(demo=True)


def test_scorecards_use_the_weights_they_are_given(client: TestClient, city: City, services: Services) -> None:
    handled(client, city, "satisfied", True)
    now = datetime.now(UTC)
    with services.sessions() as s:
        cards, _ = compute_scorecards(s, CAL, now - timedelta(days=1), now + timedelta(days=1), now,
                                      weights=check_score_weights({"satisfaction": 1.0}))
    assert cards[0].figures()["weights_used"] == {"satisfaction": 1.0}


def test_the_ranking_api_starts_from_the_citys_weights(client: TestClient, city: City, services: Services) -> None:
    services.settings.score_weights = {"response": 0.2, "resolution": 0.3, "satisfaction": 0.5}
    r = client.get("/api/scorecards", headers=city.headers("supervisor"))
    assert r.status_code == 200, r.text
    assert r.json()["weights"] == {"response": 0.2, "on_time": 0.0, "resolution": 0.3, "satisfaction": 0.5}
    r = client.get("/api/scorecards?w_response=0.6&w_on_time=0.4", headers=city.headers("supervisor"))
    assert r.json()["weights"] == {"response": 0.6, "on_time": 0.4, "resolution": 0.3, "satisfaction": 0.5}
    r = client.get("/api/scorecards?w_response=0&w_resolution=0&w_satisfaction=0",
                   headers=city.headers("supervisor"))
    assert r.status_code == 422 and "w_" in r.text
