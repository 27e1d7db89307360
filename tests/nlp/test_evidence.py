"""Catalogue words as evidence where the model is unsure, and the walk down the category tree."""

from __future__ import annotations

from nlp.evidence import CategoryTree, TermEvidence, decode, mix, name_terms, note_terms, subtree_mass

TREE: dict[str, str | None] = {"01": None, "10": None, "1001": "10", "100101": "1001", "100102": "1001",
                               "1002": "10"}


def test_probability_spread_over_the_leaves_of_one_branch_adds_up() -> None:
    # 城乡建设 alone is the likeliest label, but 停水 + 水质 + 供水 together are likelier: the request is about water.
    ranked = decode({"01": 0.35, "100101": 0.25, "100102": 0.2, "1001": 0.1, "1002": 0.1}, TREE)
    assert ranked[0][0] == "100101" and ranked[1][0] == "01"


def test_the_walk_stops_where_the_node_itself_holds_more_than_any_child() -> None:
    assert decode({"1001": 0.6, "100101": 0.2, "100102": 0.2}, TREE)[0] == ("1001", 1.0)


def test_words_count_only_as_far_as_the_model_is_unsure() -> None:
    unsure = mix({"01": 0.3, "1002": 0.25}, {"1002": 1.0})
    assert decode(unsure, TREE)[0][0] == "1002"
    sure = mix({"01": 0.95, "1002": 0.05}, {"1002": 1.0})
    assert decode(sure, TREE)[0][0] == "01"
    assert mix({"01": 0.4}, {}) == {"01": 0.4}


def test_the_words_are_the_catalogues_own() -> None:
    assert name_terms("交通秩序与信号灯") == ["交通秩序与信号灯", "交通秩序", "信号灯"]
    assert note_terms("社会生活噪声（广场舞、邻里噪声、娱乐场所）由公安机关处理") == ["广场舞", "邻里噪声", "娱乐场所"]
    evidence = TermEvidence({"100101": ["停水"], "1002": ["停电"], "1001": ["供水", "停水"]})
    assert evidence.score("小区停水了") == {"100101": 0.5, "1001": 0.5}  # a shared word counts half for each
    assert evidence.words("停水又停电") == ["停水", "停电"]


def test_one_tree_decodes_as_the_parents_map_does_and_a_code_outside_it_is_a_first_level() -> None:
    tree = CategoryTree(TREE)
    scores = {"01": 0.2, "100101": 0.25, "100102": 0.2, "1002": 0.1, "99": 0.25}
    assert tree.decode(scores) == decode(scores, TREE)
    assert [code for code, _ in tree.decode(scores)] == ["100101", "99", "01"]
    assert tree.subtree_mass(scores) == subtree_mass(scores, TREE)
