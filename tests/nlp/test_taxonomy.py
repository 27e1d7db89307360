"""Category-path labels: thin categories are learnt as part of their parent; a city resolves the deepest name."""

from __future__ import annotations

from nlp.taxonomy import coarsen, first_level, resolve


def test_a_category_with_too_few_examples_is_learnt_as_its_parent() -> None:
    labels = (["水电气热/排水/下水道堵塞"] * 2 + ["水电气热/排水"] * 2 + ["水电气热/燃气/燃气泄漏"] * 5
              + ["水电气热"] * 3)
    target = coarsen(labels, 3)
    assert target["水电气热/排水/下水道堵塞"] == "水电气热/排水"  # 2 + 2 examples together are enough
    assert target["水电气热/燃气/燃气泄漏"] == "水电气热/燃气/燃气泄漏"
    assert target["水电气热"] == "水电气热"


def test_merging_climbs_until_enough_examples_but_never_above_the_first_level() -> None:
    target = coarsen(["城市管理/市政设施/路灯不亮", "城市管理/市政设施/井盖缺失破损", "民政"], 5)
    assert target["城市管理/市政设施/路灯不亮"] == "城市管理"
    assert target["民政"] == "民政"


def test_a_first_level_label_short_of_examples_takes_in_its_smallest_subcategory() -> None:
    # what a city's history did: one ticket filed at the first level beside two well-filled subcategories
    labels = ["劳动和社会保障"] + ["劳动和社会保障/就业创业"] * 9 + ["劳动和社会保障/社会保险"] * 20
    target = coarsen(labels, 8)
    assert target["劳动和社会保障"] == "劳动和社会保障"
    assert target["劳动和社会保障/就业创业"] == "劳动和社会保障"  # the smaller one joins it: 1 + 9 examples
    assert target["劳动和社会保障/社会保险"] == "劳动和社会保障/社会保险"


def test_a_city_resolves_the_deepest_name_it_knows() -> None:
    assert resolve("城市管理/市容秩序/占道经营", {"城市管理", "占道经营"}) == "占道经营"
    assert resolve("城市管理/市容秩序/占道经营", {"城市管理"}) == "城市管理"
    assert resolve("城市管理/市容秩序", {"民政"}) is None
    assert first_level("水电气热/燃气/燃气泄漏") == "水电气热"
