"""The supervisor board's API additions: GET /api/desk/hotspots (热点/突发聚集) and the clustering behind it."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from hotline.models import Ticket
from hotline.services import Services
from nlp.duplicates import DuplicateIndex
from tests.conftest import City, act, submit

BURST = [
    "澄江街道建设路主水管爆裂，路面大量冒水，整条建设路停水了",
    "建设路水管爆裂停水，家里一滴水都没有，什么时候恢复供水",
    "建设路主水管爆了，马路上全是水，附近小区全部停水",
    "建设路停水好几个小时了，听说是主水管爆裂，请尽快抢修供水",
]
UNRELATED = [
    "咨询公积金提取需要带哪些材料",
    "幸福小区楼下烧烤摊油烟太大，晚上熏得开不了窗",
]
# Everyday requests without a known area: never in a hot spot, but they give the index realistic word weights
# (in a collection of five tickets every shared word looks common).
BACKGROUND = [
    "咨询社保卡补办需要带哪些材料", "小区门口垃圾三天没人清运", "学校门口早高峰拥堵，建议增设红绿灯",
    "公交车司机态度恶劣，不等老人坐稳就开车", "楼上漏水找物业一直不管", "共享单车乱停放堵住盲道",
    "饭店油烟扰民，晚上开不了窗", "医保报销比例是多少", "菜市场门口占道经营", "路边井盖缺失存在安全隐患",
    "出租车拒载还绕路", "楼道里堆满杂物，消防通道被堵", "小区电梯经常故障困人", "广场舞音响太吵影响休息",
    "农民工工资被拖欠三个月",
]


def _ticket(client: TestClient, city: City, services: Services, text: str, area: str | None,
            *, ago: timedelta = timedelta(minutes=5)) -> int:
    received = datetime.now(UTC) - ago
    ticket = submit(client, city, text=text, received_at=received.isoformat())
    if area is not None:
        with services.sessions() as s:
            s.execute(update(Ticket).where(Ticket.id == ticket["id"]).values(area_id=city.ids[f"area:{area}"]))
            s.commit()
    return int(ticket["id"])


def _background(client: TestClient, city: City, services: Services) -> None:
    for text in BACKGROUND:
        _ticket(client, city, services, text, None, ago=timedelta(minutes=30))


def _spots(client: TestClient, city: City, who: str = "supervisor", **params: Any) -> Any:
    response = client.get("/api/desk/hotspots", params=params, headers=city.headers(who))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_burst_in_one_area_is_a_hot_spot_and_unrelated_tickets_are_not(
    client: TestClient, city: City, services: Services
) -> None:
    _background(client, city, services)
    burst = [_ticket(client, city, services, text, "cj", ago=timedelta(minutes=50 - 10 * i))
             for i, text in enumerate(BURST)]
    unrelated = [_ticket(client, city, services, text, "cj") for text in UNRELATED]
    data = _spots(client, city, hours=2, min_size=3)
    assert data["hours"] == 2 and data["min_size"] == 3 and data["scanned"] == 6
    assert len(data["clusters"]) == 1
    spot = data["clusters"][0]
    assert spot["ticket_ids"] == burst  # oldest first
    assert not set(unrelated) & set(spot["ticket_ids"])
    assert spot["size"] == 4 and spot["open_count"] == 4
    assert spot["area_id"] == city.ids["area:cj"] and spot["area_name"] == "澄江街道"
    assert spot["area_path"] == ["明湖市", "东湖区", "澄江街道"]
    assert spot["key"] == str(burst[0])
    assert any("停水" in term or "水管" in term for term in spot["top_terms"]), spot["top_terms"]
    assert [t["id"] for t in spot["tickets"]] == list(reversed(burst))  # newest first
    assert len(spot["sample_titles"]) == 3 and all(spot["sample_titles"])
    assert datetime.fromisoformat(spot["first_at"]) < datetime.fromisoformat(spot["last_at"])
    # a bigger minimum finds nothing; the front desk may look too, units may not
    assert _spots(client, city, hours=2, min_size=5)["clusters"] == []
    for who in ("agent", "dispatcher", "admin"):
        assert [c["ticket_ids"] for c in _spots(client, city, who, hours=2)["clusters"]] == [burst]
    for who in ("cgj", "cjjd"):
        assert client.get("/api/desk/hotspots", headers=city.headers(who)).status_code == 403
    assert client.get("/api/desk/hotspots").status_code == 401
    assert client.get("/api/desk/hotspots", params={"hours": 0}, headers=city.headers("supervisor")).status_code == 422
    assert client.get("/api/desk/hotspots", params={"min_size": 1},
                      headers=city.headers("supervisor")).status_code == 422


def test_the_window_decides_and_the_index_follows_new_tickets(
    client: TestClient, city: City, services: Services
) -> None:
    _background(client, city, services)
    old = _ticket(client, city, services, BURST[0], "cj", ago=timedelta(hours=5))
    recent = [_ticket(client, city, services, text, "cj") for text in BURST[1:3]]
    assert _spots(client, city, hours=2)["clusters"] == []  # only two within two hours
    wide = _spots(client, city, hours=6)["clusters"]
    assert [c["ticket_ids"] for c in wide] == [[old, *recent]]
    # a new report arrives: the next call sees it without any restart
    newest = _ticket(client, city, services, BURST[3], "cj", ago=timedelta(minutes=1))
    assert [c["ticket_ids"] for c in _spots(client, city, hours=2)["clusters"]] == [[*recent, newest]]


def test_reports_merged_into_one_incident_still_count(client: TestClient, city: City, services: Services) -> None:
    _background(client, city, services)
    ids = [_ticket(client, city, services, text, "cj") for text in BURST[:3]]
    for child in ids[1:]:
        response = act(client, city, "agent", child, "merge", parent_id=ids[0], note="同一事件")
        assert response.status_code == 200, response.text
    spot = _spots(client, city, hours=2)["clusters"][0]
    assert sorted(spot["ticket_ids"]) == ids and spot["size"] == 3 and spot["open_count"] == 1


def test_the_area_hierarchy_is_respected(client: TestClient, city: City, services: Services) -> None:
    _background(client, city, services)
    street = [_ticket(client, city, services, text, "cj") for text in BURST[:2]]
    district = _ticket(client, city, services, BURST[2], "dh")  # names only 东湖区: may be the same incident
    other = [_ticket(client, city, services, text, "xs") for text in (BURST[0], BURST[3])]  # 西山区: elsewhere
    nowhere = _ticket(client, city, services, BURST[3], None)  # no area: never in a hot spot
    clusters = _spots(client, city, hours=2, min_size=3)["clusters"]
    assert len(clusters) == 1
    assert sorted(clusters[0]["ticket_ids"]) == sorted([*street, district])
    assert clusters[0]["area_name"] == "澄江街道"  # the most specific area of the cluster
    pairs = _spots(client, city, hours=2, min_size=2)["clusters"]
    by_area = {c["area_name"]: sorted(c["ticket_ids"]) for c in pairs}
    assert by_area == {"澄江街道": sorted([*street, district]), "西山区": sorted(other)}
    assert all(nowhere not in c["ticket_ids"] for c in pairs)
    # an area moved to another district: the next call uses the new hierarchy
    with services.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id.in_(other)).values(area_id=city.ids["area:cj"]))
        s.commit()
    moved = _spots(client, city, hours=2, min_size=3)["clusters"]
    assert [sorted(c["ticket_ids"]) for c in moved] == [sorted([*street, district, *other])]


def test_two_streets_of_one_district_never_chain_through_the_district() -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    places = {"city": None, "d": "city", "d-a": "d", "d-b": "d"}
    background = [(f"bg{i}", text, None, now) for i, text in enumerate(BACKGROUND)]
    index = DuplicateIndex(places=places)
    index.add_many([*background,
        ("a1", BURST[0], "d-a", now), ("a2", BURST[1], "d-a", now),
        ("d1", BURST[2], "d", now),
        ("b1", BURST[3], "d-b", now), ("b2", BURST[0], "d-b", now),
    ])
    spots = index.hot_spots(min_size=2, min_score=0.2, at=now, window=timedelta(hours=2))
    assert len(spots) == 2
    for spot in spots:
        street = str(spot.place_code)
        assert street in ("d-a", "d-b")
        # each cluster holds one street's tickets, and at most the district's one report
        assert {str(t)[0] for t in spot.ticket_ids} <= {street[-1], "d"}
    assert sum("d1" in s.ticket_ids for s in spots) == 1
    # without the hierarchy a place only matches itself
    flat = DuplicateIndex()
    flat.add_many([*background, ("a1", BURST[0], "d-a", now), ("a2", BURST[1], "d-a", now), ("d1", BURST[2], "d", now)])
    assert [sorted(map(str, s.ticket_ids)) for s in flat.hot_spots(min_size=2, min_score=0.2, at=now)] == [
        ["a1", "a2"]]


def test_hot_spots_among_five_thousand_recent_tickets() -> None:
    """5,000 unrelated tickets in 100 streets plus 20 bursts of six; prints the time (not asserted)."""
    rng = random.Random(7)
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    places: dict[str, str | None] = {"city": None}
    streets = []
    for d in range(10):
        places[f"d{d}"] = "city"
        for s in range(10):
            places[f"d{d}s{s}"] = f"d{d}"
            streets.append(f"d{d}s{s}")
    subjects = ["路灯不亮", "井盖缺失", "垃圾堆放", "噪音扰民", "占道经营", "违章停车", "树木倒伏", "电梯故障",
                "楼道堆物", "广告牌破损", "共享单车乱停", "油烟扰民", "小广告", "下水道堵塞"]
    roads = ["中山路", "人民路", "解放路", "青石路", "文化路", "长江路", "黄河路", "光明路", "和平路", "幸福路"]
    filler = ["请尽快处理", "已经好几天了", "影响居民生活", "希望有关部门重视", "多次反映没有结果", "晚上特别严重",
              "老人孩子出行不便", "存在安全隐患"]
    items: list[tuple[Any, str, str | None, datetime]] = []
    for i in range(5000):
        text = (f"{rng.choice(roads)}{rng.randint(1, 300)}号附近{rng.choice(subjects)}，{rng.choice(filler)}，"
                f"{rng.choice(filler)}。第{i}号")
        items.append((i, text, rng.choice(streets), now - timedelta(minutes=rng.uniform(0, 120))))
    bursts: dict[str, list[str]] = {}
    for b, street in enumerate(rng.sample(streets, 20)):
        road = rng.choice(roads)
        bursts[street] = [f"b{b}-{k}" for k in range(6)]
        for k in range(6):
            items.append((f"b{b}-{k}", f"{road}主水管爆裂，{road}一带全部停水，{rng.choice(filler)}", street,
                          now - timedelta(minutes=rng.uniform(0, 90))))
    index = DuplicateIndex(places=places)
    started = time.perf_counter()
    index.add_many(items)
    added = time.perf_counter()
    spots = index.hot_spots(min_size=3, min_score=0.35, at=now, window=timedelta(hours=2))
    done = time.perf_counter()
    print(f"\nhot spots: indexed {len(items)} tickets in {added - started:.2f} s, "
          f"clustered in {(done - added) * 1000:.0f} ms, {len(spots)} hot spots")
    found = {s.place_code: sorted(map(str, s.ticket_ids)) for s in spots}
    for street, ids in bursts.items():
        assert set(ids) <= set(found.get(street, [])), street
    assert all(str(t).startswith("b") for s in spots for t in s.ticket_ids)
