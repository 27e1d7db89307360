from datetime import datetime, timedelta

import pytest

from nlp.duplicates import DuplicateIndex

NOW = datetime(2024, 5, 1, 10, 0)


def _index() -> DuplicateIndex:
    index = DuplicateIndex(window=timedelta(days=7))
    index.add("T1", "幸福里小区门口主水管爆裂，大量冒水，路面被淹", "C1", NOW)
    index.add("T2", "人民路公交站台广告牌破损，存在安全隐患", "C2", NOW)
    index.add("T3", "学校门口早高峰拥堵，建议增设红绿灯", "C1", NOW)
    return index


def test_same_incident_reported_again_is_found_first():
    hits = _index().query("幸福里小区门口的水管爆了，一直在冒水", "C1", NOW + timedelta(hours=1))
    assert hits[0].ticket_id == "T1" and 0 < hits[0].score <= 1


def test_different_known_place_is_not_the_same_incident():
    assert _index().query("幸福里小区门口主水管爆裂，大量冒水", "C9", NOW) == []


def test_unknown_place_can_match():
    assert _index().query("幸福里小区门口主水管爆裂，大量冒水", None, NOW)[0].ticket_id == "T1"


def test_tickets_outside_the_window_are_ignored():
    assert _index().query("幸福里小区门口主水管爆裂，大量冒水", "C1", NOW + timedelta(days=8)) == []


def test_removed_ticket_is_never_suggested():
    index = _index()
    assert index.remove("T1") and not index.remove("T1")
    assert "T1" not in index and len(index) == 2
    assert all(h.ticket_id != "T1" for h in index.query("幸福里小区门口主水管爆裂", "C1", NOW, min_score=0.0))


def test_unrelated_text_scores_below_the_minimum():
    assert _index().query("咨询公积金提取需要什么材料", "C1", NOW) == []


def test_expire_drops_old_tickets():
    index = _index()
    index.add("T0", "很久以前的投诉", None, NOW - timedelta(days=30))
    assert index.expire(NOW) == 1 and "T0" not in index


def test_compaction_after_many_removals_keeps_results():
    index = DuplicateIndex()
    for i in range(3000):
        index.add(i, f"编号{i}号楼 电梯故障 第{i % 7}单元", None, NOW)
    for i in range(2500):
        index.remove(i)
    index.add("X", "幸福里小区门口主水管爆裂", None, NOW)
    assert len(index) == 501
    assert index.query("幸福里小区门口主水管爆裂", None, NOW)[0].ticket_id == "X"


def test_vocabulary_follows_the_indexed_tickets_not_every_word_seen():
    """A soak (issue #14) showed each API worker growing with every ticket: the vocabulary kept every word ever
    indexed. Words only removed tickets used go at compaction; a long text's words beyond ``max_terms`` never enter."""
    index = DuplicateIndex(max_terms=5)
    index.add("long", " ".join(f"词{i}号" for i in range(50)), None, NOW)
    assert len(index._vocab) == 5
    for round_ in range(5):  # a steady state: tickets come, each with its own words (编号, phone numbers...), and go
        for i in range(2000):
            index.add((round_, i), f"电梯故障 编号{round_}x{i}", None, NOW)
        for i in range(2000):
            index.remove((round_, i))
    assert len(index._vocab) < 3000 and len(index._terms) == len(index._df) == len(index._post_slots)
    index.add("X", "幸福里小区门口主水管爆裂", None, NOW)
    assert index.query("幸福里小区门口主水管爆裂", None, NOW)[0].ticket_id == "X"
    assert index.query(" ".join(f"词{i}号" for i in range(50)), None, NOW)[0].ticket_id == "long"


def test_hot_spot_groups_similar_requests_at_one_place():
    index = _index()
    index.add("T4", "幸福里小区门口水管爆裂冒水严重", "C1", NOW + timedelta(hours=2))
    index.add("T5", "幸福里小区门口主水管爆裂冒水", "C1", NOW + timedelta(hours=3))
    index.add("T6", "幸福里小区门口主水管爆裂冒水", "C2", NOW + timedelta(hours=3))
    spots = index.hot_spots(min_size=3, min_score=0.3)
    assert len(spots) == 1
    assert spots[0].place_code == "C1" and sorted(spots[0].ticket_ids) == ["T1", "T4", "T5"]
    assert spots[0].first_at == NOW


def test_hot_spot_tags_leave_out_everyday_filler_words():
    """Seen on the demo city: 家里, 时候, 晚上 as a hot spot's tags. The tags say what the incident is."""
    index = DuplicateIndex(window=timedelta(days=7))
    for n, text in enumerate(("晚上家里停电了，这个时候电梯也停了", "家里晚上突然停电，什么时候来电",
                              "晚上的时候家里停电，电梯困人")):
        index.add(f"P{n}", text, "C1", NOW + timedelta(minutes=n))
    spots = index.hot_spots(min_size=3, min_score=0.2)
    assert len(spots) == 1
    assert "停电" in spots[0].top_terms
    assert not {"家里", "时候", "晚上"} & set(spots[0].top_terms), spots[0].top_terms


def test_terms_cut_once_give_what_the_text_gives():
    text = "幸福里小区门口的水管爆了，一直在冒水"
    by_text, by_terms = _index(), _index()
    assert by_terms.query("", "C1", NOW, terms=by_terms.terms(text)) == by_text.query(text, "C1", NOW)
    by_text.add("T4", text, "C1", NOW)
    by_terms.add("T4", "", "C1", NOW, terms=by_terms.terms(text))
    again = "幸福里小区门口的水管爆了，冒水"
    assert by_terms.query(again, "C1", NOW) == by_text.query(again, "C1", NOW)
    assert "T4" in [d.ticket_id for d in by_terms.query(again, "C1", NOW)]


def test_an_entry_taken_by_another_index_finds_what_the_text_would():
    maker, follower = DuplicateIndex(), DuplicateIndex()
    for ticket_id, text, place in ((1, "建设路12号路灯不亮已经三天了", "A1"), (2, "幸福小区门口垃圾没人清运", "A2")):
        maker.add(ticket_id, text, place, NOW)
        terms, weights = maker.entry(ticket_id)
        follower.add_entry(ticket_id, terms, weights, place, NOW)
        assert follower.entry(ticket_id) == maker.entry(ticket_id)
    assert follower.query("建设路的路灯不亮", None) == maker.query("建设路的路灯不亮", None)
    assert maker.entry(99) is None


def test_an_entry_that_is_not_one_is_refused_and_indexes_nothing():
    index = DuplicateIndex(max_terms=3)
    for terms, weights in ((["路灯", "不亮"], [0.5]), (["路灯", "路灯"], [0.5, 0.5]), (["路灯"], [float("nan")]),
                           (["a", "b", "c", "d"], [0.5] * 4)):
        with pytest.raises(ValueError):
            index.add_entry(1, terms, weights, None, NOW)
    assert 1 not in index and len(index) == 0
