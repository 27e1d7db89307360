"""Knowledge articles carry validity dates and an owning unit: outside its dates an article is offered to nobody
(the agent's search and panel, the suggester, WeChat's direct answers) but admins still see it marked. Office hours
are data the admins edit (the setting is the default), audited, in force for the next deadline at once; the
calendar's month names the statutory holidays."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from hotline.models import AuditEvent, KnowledgeArticle
from hotline.services import Services
from tests.conftest import City
from wechat_bot.channel import knowledge_answer

DEMO_KNOWLEDGE = json.loads((Path(__file__).resolve().parents[2] / "hotline" / "demo_data" / "knowledge.json")
                            .read_text(encoding="utf-8"))
ARTICLE = {"title": "社保卡丢了怎么补办", "body": "社保卡丢失后先挂失，再携带身份证到社保窗口补办，当场领取新卡。",
           "keywords": ["社保卡", "补办"]}


def today(services: Services) -> date:
    return datetime.now(services.timing.zone).date()


def test_an_article_out_of_its_dates_is_offered_to_nobody_but_admins_see_it_marked(
    client: TestClient, services: Services, city: City
) -> None:
    admin = city.headers("admin")
    day = today(services)
    current = client.post("/api/knowledge", headers=admin, json={
        **ARTICLE, "valid_from": (day - timedelta(days=30)).isoformat(),
        "valid_to": (day + timedelta(days=30)).isoformat(), "owner_unit_id": city.ids["unit:cgj"]}).json()
    expired = client.post("/api/knowledge", headers=admin, json={
        **ARTICLE, "title": "社保卡补办（旧规定）", "valid_to": (day - timedelta(days=1)).isoformat()}).json()
    pending = client.post("/api/knowledge", headers=admin, json={
        **ARTICLE, "title": "社保卡补办（明年新规）", "valid_from": (day + timedelta(days=1)).isoformat()}).json()
    assert (current["validity"], expired["validity"], pending["validity"]) == ("current", "expired", "pending")
    assert current["owner_unit_name"] == "市城管局"

    agent_hits = client.get("/api/knowledge", params={"q": "社保卡丢了怎么补办"}, headers=city.headers("agent")).json()
    assert [a["id"] for a in agent_hits] == [current["id"]]
    assert [a["id"] for a in client.get("/api/knowledge", headers=city.headers("agent")).json()] == [current["id"]]
    admin_hits = client.get("/api/knowledge", params={"q": "社保卡丢了怎么补办"}, headers=admin).json()
    assert {a["id"]: a["validity"] for a in admin_hits} == {
        current["id"]: "current", expired["id"]: "expired", pending["id"]: "pending"}
    # the agent's panel loads an article by id: it says why it is not to be quoted
    assert client.get(f"/api/knowledge/{expired['id']}", headers=city.headers("agent")).json()["validity"] == "expired"

    with services.sessions() as session:
        search = services.knowledge_search
        assert [i for i, _ in search(session, "社保卡丢了怎么补办", 5)] == [current["id"]]
        # the day decides: on the pending article's first day both it and the current one are offered
        assert {i for i, _ in search(session, "社保卡丢了怎么补办", 5, on=day + timedelta(days=1))} == {
            current["id"], pending["id"]}


def test_wechat_answers_no_question_from_an_expired_article(client: TestClient, services: Services, city: City) -> None:
    with services.sessions() as session:
        session.add_all(KnowledgeArticle(title=a["title"], body=a["body"]) for a in DEMO_KNOWLEDGE)
        session.commit()
        services.knowledge_changed()
        answer = knowledge_answer(session, "社保卡丢了怎么补办？", services.knowledge_search)
        assert answer is not None
        article = session.get(KnowledgeArticle, answer.article_id)
        assert article is not None
        body = {"title": article.title, "body": article.body, "keywords": article.keywords}
    yesterday = (today(services) - timedelta(days=1)).isoformat()
    expired = client.put(f"/api/knowledge/{answer.article_id}", headers=city.headers("admin"),
                         json={**body, "valid_to": yesterday})
    assert expired.json()["validity"] == "expired"
    with services.sessions() as session:
        assert knowledge_answer(session, "社保卡丢了怎么补办？", services.knowledge_search) is None


def test_validity_that_ends_before_it_starts_is_refused_in_chinese_and_nothing_is_written(
    client: TestClient, services: Services, city: City
) -> None:
    refused = client.post("/api/knowledge", headers=city.headers("admin"), json={
        **ARTICLE, "valid_from": "2027-03-01", "valid_to": "2027-02-28"})
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "有效期的结束日期 2027-02-28 早于开始日期 2027-03-01，请检查 (valid_to is before valid_from)")
    assert client.post("/api/knowledge", headers=city.headers("admin"),
                       json={**ARTICLE, "valid_to": "2101-01-01"}).status_code == 422  # bounded days
    unknown = client.post("/api/knowledge", headers=city.headers("admin"), json={**ARTICLE, "owner_unit_id": 999})
    assert unknown.status_code == 422 and unknown.json()["detail"] == "维护单位（编号 999）不存在或已停用"
    assert client.get("/api/knowledge", headers=city.headers("admin")).json() == []


def test_office_hours_are_edited_audited_and_move_the_next_deadline_at_once(
    client: TestClient, services: Services, city: City
) -> None:
    admin = city.headers("admin")
    shown = client.get("/api/calendar/office-hours", headers=admin).json()
    assert shown == {"periods": [["08:30", "12:00"], ["13:30", "17:30"]], "source": "setting",
                     "default": [["08:30", "12:00"], ["13:30", "17:30"]], "day_minutes": 450}
    # Monday 2026-12-07 09:00: a help request's sign deadline is 2 working hours later
    params = {"kind": "help", "urgent": "false", "start": "2026-12-07T09:00:00+08:00"}
    before = client.get("/api/deadline-policies/preview", params=params, headers=admin).json()
    assert before["sign_due"].startswith("2026-12-07T11:00")

    later_first = [{"opens": "14:00", "closes": "18:00"}, {"opens": "9:30", "closes": "12:00"}]
    changed = client.put("/api/calendar/office-hours", headers=admin, json={"periods": later_first})
    assert changed.status_code == 200
    assert changed.json()["periods"] == [["09:30", "12:00"], ["14:00", "18:00"]]  # ordered
    assert changed.json()["source"] == "admin" and changed.json()["day_minutes"] == 390
    after = client.get("/api/deadline-policies/preview", params=params, headers=admin).json()
    assert after["sign_due"].startswith("2026-12-07T11:30")  # the clock starts at 09:30 now
    config = client.get("/api/desk/config", headers=city.headers("agent")).json()
    assert config["office_hours"]["periods"] == [["09:30", "12:00"], ["14:00", "18:00"]]

    with services.sessions() as session:
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.entity == "office_hours")).all()
        assert event.actor_id == city.ids["user:admin"] and event.before is None
        assert event.after is not None and event.after["periods"] == [["09:30", "12:00"], ["14:00", "18:00"]]
        assert event.summary == "办公时间改为 09:30–12:00、14:00–18:00"

    reset = client.delete("/api/calendar/office-hours", headers=admin).json()
    assert reset["source"] == "setting" and reset["periods"] == [["08:30", "12:00"], ["13:30", "17:30"]]
    assert client.get("/api/deadline-policies/preview", params=params, headers=admin).json() == before
    assert client.delete("/api/calendar/office-hours", headers=admin).status_code == 404


def test_overlapping_reversed_or_malformed_office_hours_are_refused_in_chinese(
    client: TestClient, services: Services, city: City
) -> None:
    admin = city.headers("admin")
    cases = {
        "时段 08:30–12:00 与 11:00–17:00 重叠，请调整 (office periods must not overlap)":
            [{"opens": "08:30", "closes": "12:00"}, {"opens": "11:00", "closes": "17:00"}],
        "时段 17:00–09:00 的结束时间须晚于开始时间 (a period must end after it opens)":
            [{"opens": "17:00", "closes": "09:00"}],
        "“25:00”不是时刻，请写成 08:30 (not a time of day HH:MM)": [{"opens": "08:00", "closes": "25:00"}],
    }
    for detail, periods in cases.items():
        refused = client.put("/api/calendar/office-hours", headers=admin, json={"periods": periods})
        assert refused.status_code == 422 and refused.json()["detail"] == detail
    assert client.put("/api/calendar/office-hours", headers=admin, json={"periods": []}).status_code == 422
    assert client.put("/api/calendar/office-hours", headers=city.headers("supervisor"),
                      json={"periods": [{"opens": "09:00", "closes": "17:00"}]}).status_code == 403
    assert client.get("/api/calendar/office-hours", headers=admin).json()["source"] == "setting"
    with services.sessions() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.entity == "office_hours")).all() == []


def test_the_month_view_names_the_statutory_holidays_and_their_weekend_workdays(client: TestClient, city: City) -> None:
    days = client.get("/api/calendar/month", params={"year": 2026, "month": 10}, headers=city.headers("admin")).json()
    by_day = {d["day"]: d for d in days["days"]}
    assert by_day["2026-10-01"]["holiday"] == "国庆节" and by_day["2026-10-01"]["working"] is False
    assert by_day["2026-10-10"]["holiday"] == "国庆节" and by_day["2026-10-10"]["working"] is True  # 调休
    assert by_day["2026-10-12"]["holiday"] is None
