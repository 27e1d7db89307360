"""Emergencies and questions as citizens actually phrase them (the rules' coverage of colloquial speech)."""

from __future__ import annotations

from nlp.signals import detect_kind, detect_urgency


def test_someone_shut_in_a_stuck_lift_is_a_119_call() -> None:
    u = detect_urgency("", "我们2号楼的电梯卡在9楼和10楼中间了，里面关着一个老太太和一个小孩")
    assert (u.urgent, u.emergency_line) == (True, "119")
    assert not detect_urgency("", "小区电梯经常坏，物业一直拖着不修").urgent


def test_an_injured_person_after_a_crash_is_flagged() -> None:
    u = detect_urgency("", "新华路上两辆车撞了，有个骑电动车的人躺在地上起不来，流了好多血！")
    assert u.urgent and u.emergency_line in ("120", "122")


def test_asking_whether_it_is_a_gas_leak_is_not_a_denial() -> None:
    u = detect_urgency("", "燃气灶关了还一直有嘶嘶的声音，闻着有股臭鸡蛋味，是不是漏气了？")
    assert (u.urgent, u.emergency_line) == (True, "119")
    assert not detect_urgency("", "燃气公司上门检查过了，不是漏气，是灶具老化").urgent


def test_questions_without_the_word_consult_are_consultations() -> None:
    assert detect_kind("", "我父亲今年满八十了，听说有高龄津贴，想问一下怎么申请，需要去哪里办理？") == "consultation"
    assert detect_kind("", "住院花了两万多，回来以后医保能报多少？报销需要准备哪些材料？") == "consultation"
    assert detect_kind("", "我们夫妻俩想买房用公积金贷款，最多能贷多少？") == "consultation"
