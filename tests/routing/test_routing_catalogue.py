"""Dispatch catalogue (派单目录): specificity order, fallback, explanations, index vs brute force."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.catalogue import Catalogue, Rule, category_path, route

CITY, DISTRICT, STREET, COMMUNITY = "330100", "330102", "330102001", "330102001001"
OTHER_STREET = "330102002"
AREA = (CITY, DISTRICT, STREET, COMMUNITY)

CATEGORY_NAMES = {
    "15": "城市管理",
    "1502": "占道经营",
    "150201": "流动摊贩",
    "02": "环境保护",
    "0203": "噪声污染",
}
AREA_NAMES = {
    CITY: "明湖市",
    DISTRICT: "明湖区",
    STREET: "澄江街道",
    COMMUNITY: "澄江社区",
    OTHER_STREET: "湖滨街道",
}
UNIT_NAMES = {
    "u-city-cg": "市城市管理局",
    "u-dist-cg": "明湖区城市管理局",
    "u-cj": "澄江街道办事处",
    "u-market": "明湖区市场监管局",
    "u-env": "市生态环境局",
}

RULES = [
    Rule(3, "15", CITY, "u-city-cg"),
    Rule(7, "15", DISTRICT, "u-dist-cg"),
    Rule(12, "1502", STREET, "u-cj", co=("u-market", "u-cj", "u-market"), note="夜市时段联合执法"),
    Rule(13, "150201", CITY, "u-city-cg"),
    Rule(20, "0203", DISTRICT, "u-env"),
]
CATALOGUE = Catalogue(RULES)


def names() -> dict[str, dict[str, str]]:
    return {"category_names": CATEGORY_NAMES, "area_names": AREA_NAMES, "unit_names": UNIT_NAMES}


def test_category_path() -> None:
    assert category_path("150201") == ("15", "1502", "150201")
    with pytest.raises(ValueError):
        category_path("150")


def test_street_rule_with_explanation() -> None:
    decision = route(CATALOGUE, ("15", "1502"), AREA, **names())
    assert decision.lead == "u-cj"
    assert decision.rule_id == 12
    assert decision.co == ("u-market",)  # without duplicates and without the lead
    assert decision.specificity == (3, 2)
    assert decision.source == "rule"
    assert decision.explanation.startswith("派单目录规则#12：城市管理/占道经营 × 澄江街道 → 澄江街道办事处")
    assert "协办：明湖区市场监管局" in decision.explanation and "夜市时段联合执法" in decision.explanation


def test_category_first_then_area() -> None:
    # the city's rule for the sub-category "150201" beats the street's broader "1502" rule: an exception
    # stated for a sub-category is exactly what the broader rules must not swallow
    assert route(CATALOGUE, ("15", "1502", "150201"), AREA).rule_id == 13
    assert route(CATALOGUE, ("15", "1502"), AREA).rule_id == 12
    # for the same category, the deeper area wins: the district's "15" beats the city's "15"
    other = (CITY, DISTRICT, OTHER_STREET)
    assert route(CATALOGUE, ("15", "1502", "150201"), other).rule_id == 13
    assert route(CATALOGUE, ("15", "1503"), other).rule_id == 7
    # outside the district: only city rules; the deeper category wins at the same area
    elsewhere = (CITY, "330105", "330105001")
    assert route(CATALOGUE, ("15", "1502", "150201"), elsewhere).rule_id == 13
    assert route(CATALOGUE, ("15", "1501"), elsewhere).rule_id == 3
    # at the same area, the deeper category wins
    same_area = Catalogue([Rule(1, "15", STREET, "a"), Rule(2, "1502", STREET, "b")])
    assert route(same_area, ("15", "1502"), AREA).lead == "b"
    assert route(same_area, ("15", "1503"), AREA).lead == "a"


def test_fallback_then_queue() -> None:
    fallback = {"02": "u-env", "15": "u-city-cg"}
    decision = route(CATALOGUE, ("02", "0201"), AREA, fallback, **names())
    assert (decision.lead, decision.rule_id, decision.source) == ("u-env", None, "fallback")
    assert decision.explanation == (
        "派单目录无匹配规则（环境保护/0201 × 澄江社区），按一级分类“环境保护”兜底 → 市生态环境局"
    )
    queued = route(CATALOGUE, ("07",), AREA, fallback, **names())
    assert queued.lead is None and queued.source == "queue" and queued.specificity is None
    assert "派单员待派队列" in queued.explanation
    # place unknown: no rule can match, the category's fallback still can
    assert route(CATALOGUE, ("15", "1502"), (), fallback).lead == "u-city-cg"
    assert "地点不明" in route(CATALOGUE, ("15",), ()).explanation
    # unclassified ticket
    assert route(CATALOGUE, (), AREA, fallback).source == "queue"


def test_conflicts_and_validation() -> None:
    cat = Catalogue([Rule(5, "15", STREET, "b"), Rule(4, "15", STREET, "a"), Rule(6, "02", STREET, "c")])
    assert cat.conflicts() == [(4, 5)]
    decision = cat.route(("15",), AREA)
    assert decision.lead == "a" and decision.conflicting_rule_ids == (5,)
    assert "#5" in decision.explanation
    with pytest.raises(ValueError):
        Catalogue([Rule(1, "15", STREET, "a"), Rule(1, "02", STREET, "b")])
    with pytest.raises(ValueError):
        Rule(1, "1", STREET, "a")
    with pytest.raises(ValueError):
        Rule(1, "15", "", "a")
    with pytest.raises(ValueError):
        route(CATALOGUE, ("1502", "15"), AREA)  # leaf first
    with pytest.raises(TypeError):
        route(CATALOGUE, "1502", AREA)


def test_plain_rule_list_and_large_catalogue() -> None:
    assert route(RULES, ("15",), AREA).rule_id == 7
    rules = [
        Rule(i, f"{1 + i % 16:02d}{i % 7:02d}", f"street-{i % 300}", f"unit-{i}") for i in range(1, 5001)
    ]
    cat = Catalogue(rules)
    for rule in rules[:200]:
        path = ("city", "district", rule.area)
        assert cat.route(category_path(rule.category), path).rule_id is not None


# ---------------------------------------------------------------- index == brute force
_AREAS = [CITY, DISTRICT, STREET, COMMUNITY, OTHER_STREET]
_CATS = ["15", "1501", "1502", "150201", "150202", "02", "0203"]

_rules = st.lists(
    st.builds(
        Rule,
        id=st.integers(1, 10_000),
        category=st.sampled_from(_CATS),
        area=st.sampled_from(_AREAS),
        lead=st.sampled_from(["a", "b", "c", "d"]),
    ),
    unique_by=lambda r: r.id,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_rules, st.sampled_from(_CATS), st.sampled_from([AREA, AREA[:3], (CITY, DISTRICT, OTHER_STREET)]))
def test_matches_brute_force(rules: list[Rule], leaf: str, area: tuple[str, ...]) -> None:
    cats = category_path(leaf)
    candidates = [
        (area.index(r.area) + 1, cats.index(r.category) + 1, -r.id, r)
        for r in rules
        if r.area in area and r.category in cats
    ]
    decision = route(rules, cats, area)
    if not candidates:
        assert decision.lead is None and decision.rule_id is None
        return
    a_depth, c_depth, _, best = max(candidates, key=lambda c: (c[1], c[0], c[2]))
    assert decision.rule_id == best.id
    assert decision.specificity == (a_depth, c_depth)
