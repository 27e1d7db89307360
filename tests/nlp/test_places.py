"""The ticket's 地点 is the place as the message names it, not only the area it lies in."""

from __future__ import annotations

from nlp.places import Gazetteer, PlaceEntry, place_phrase


def test_the_place_keeps_the_estate_gate_and_building_the_citizen_gave() -> None:
    assert place_phrase("金桂园小区3栋2单元的楼道里堆满了杂物", "金桂园小区") == "金桂园小区3栋2单元"
    assert place_phrase("幸福里小区南门门口的人行道被占了", "幸福里") == "幸福里小区南门"
    assert place_phrase("杏园小区2号楼的电梯卡在9楼", "杏园小区") == "杏园小区2号楼"
    assert place_phrase("建设路88号门口", "建设路") == "建设路88号"


def test_a_gate_needs_its_direction_and_an_unmatched_name_stays_as_it_is() -> None:
    assert place_phrase("翠微花园门口的井盖不见了", "翠微花园") == "翠微花园"
    assert place_phrase("别处", "金桂园") == "金桂园"


def test_an_alias_leads_to_its_community() -> None:
    gazetteer = Gazetteer([PlaceEntry("mh", "明湖市", "city"),
                           PlaceEntry("mh-bl", "北岭区", "district", "mh"),
                           PlaceEntry("mh-bl-cf", "春风社区", "community", "mh-bl", ("春风里", "幸福里"))])
    first = gazetteer.find("幸福里小区南门门口")[0]
    assert (first.code, first.matched) == ("mh-bl-cf", "幸福里")
