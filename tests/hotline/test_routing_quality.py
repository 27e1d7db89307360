"""The demo city routes requests phrased as citizens speak (issue 13): the starter model trained as `hotline nlp
starter` trains it, the demo directory, catalogue and knowledge base, and the routing fixture's requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hotline import intake
from hotline.auth import channel_actor
from hotline.models import KnowledgeArticle
from hotline.nlp_commands import demo_words, train_starter
from hotline.services import Services
from hotline.suggester import CitySuggester
from tests.hotline.routing_fixture import SEED_CORPUS, Outcome, demo_city, load_requests, run, summary

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, CitySuggester]]:
    services = demo_city(f"sqlite:///{tmp_path_factory.mktemp('routing') / 'demo.db'}")
    suggester = CitySuggester(services.sessions, services.knowledge_search, train_starter(SEED_CORPUS, demo_words()))
    services.suggester = suggester
    yield services, suggester
    services.engine.dispose()


@pytest.fixture(scope="module")
def outcomes(demo: tuple[Services, CitySuggester]) -> list[Outcome]:
    return run(*demo, load_requests())


def test_nine_requests_in_ten_get_a_lead_unit_the_centre_accepts(outcomes: list[Outcome]) -> None:
    report = summary(outcomes)
    assert report["requests"] >= 60
    assert report["lead_unit_right"] >= 0.9, [(o.request.text[:20], o.unit_code) for o in outcomes
                                               if not o.unit_right]


def test_every_emergency_is_flagged_with_its_line(outcomes: list[Outcome]) -> None:
    missed = [(o.request.text[:20], o.suggestion.emergency_line) for o in outcomes
              if o.request.urgent and not o.emergency_right]
    assert missed == []


def test_every_consultation_is_typed_as_one(outcomes: list[Outcome]) -> None:
    assert [o.request.text[:20] for o in outcomes
            if o.request.kind == "consultation" and o.suggestion.kind != "consultation"] == []


@pytest.mark.parametrize(("text", "unit"), [
    ("你好，我家住金桂园小区，小区门口那条路上的路灯已经黑了一个多星期了", "mh-dh-cgj"),
    ("喂，12345吗？我是月湖新村5栋的，楼道里一股很冲的煤气味，好像是哪家漏气了", "mh-rqjt"),
    ("滨江花园从今天早上六点开始就没水了，也没看到停水通知", "mh-swjt"),
    ("北岭区向阳小区的暖气到现在还是冰凉的，已经开始供暖一个礼拜了", "mh-rlgs"),
    ("杏园小区3栋从昨晚十点到现在一直停电，冰箱里的东西都坏了", "mh-gdgs"),
    ("请问社保卡丢了怎么补办？要带什么材料", "mh-rsj"),
    ("我妈上个月在省城住院花了两万多，回来以后医保能报多少？", "mh-ybj"),
    ("我父亲今年满八十了，听说有高龄津贴，想问一下怎么申请", "mh-mzj"),
])
def test_the_issues_examples_reach_the_unit_the_catalogue_names_for_their_leaf_category(
    demo: tuple[Services, CitySuggester], text: str, unit: str
) -> None:
    services, suggester = demo
    with services.sessions() as session:
        s = suggester.suggest(session, "", text, None, NOW)
    assert s.unit_id is not None and suggester.directory.units_by_id[s.unit_id].code == unit, s.route_explanation


def test_a_question_the_knowledge_base_answers_is_offered_for_a_direct_answer_not_dispatched(
    demo: tuple[Services, CitySuggester],
) -> None:
    services, suggester = demo
    question = "请问灵活就业人员怎么交养老保险？在哪里办"
    assert suggester._analyzer.analyze("", question).auto_dispatch  # the model alone is sure enough to dispatch
    with services.sessions() as session:
        s = suggester.suggest(session, "", question, None, NOW)
        best = session.get(KnowledgeArticle, s.knowledge[0]["article_id"])
        assert best is not None and "灵活就业" in best.title
    assert s.kind == "consultation" and s.auto_dispatch is False


@pytest.mark.parametrize(("question", "title_part"), [
    ("社保卡丢了怎么补办，去哪里办", "社保卡"),
    ("家里闻到煤气味怎么办", "燃气泄漏"),
    ("身份证丢了能不能办临时的", "身份证"),
    ("在外地住院的费用回来怎么报销", "住院医疗费用"),
])
def test_the_knowledge_base_answers_everyday_questions(
    demo: tuple[Services, CitySuggester], question: str, title_part: str
) -> None:
    services, _ = demo
    with services.sessions() as session:
        article_id = services.knowledge_search(session, question, 1)[0][0]
        title = session.scalar(select(KnowledgeArticle.title).where(KnowledgeArticle.id == article_id))
    assert title is not None and title_part in title


def test_the_ticket_gets_the_place_the_citizen_named(demo: tuple[Services, CitySuggester]) -> None:
    services, suggester = demo
    request = intake.IntakeRequest(channel="wechat", text="金桂园小区3栋2单元的楼道里堆满了纸箱，消防通道都堵死了")
    with services.sessions() as session:
        ticket, _ = intake.submit(session, request, channel_actor("wechat"), suggester=suggester,
                                  timing=services.timing, auto_dispatch=False, now=NOW)
        assert ticket.location == "金桂园小区3栋2单元"
        assert ticket.area_id == suggester.directory.areas_by_code["mh-dh-cj-jx"].id
        given = intake.submit(session, intake.IntakeRequest(channel="wechat", text="幸福里小区南门路灯不亮",
                                                            location="春风路12号"),
                              channel_actor("wechat"), suggester=suggester, timing=services.timing,
                              auto_dispatch=False, now=NOW)[0]
        assert given.location == "春风路12号"  # a place the caller gave is kept
        session.rollback()
