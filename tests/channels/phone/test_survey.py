"""Reading 回访 answers keyed, said or texted: the workflow's values, or None rather than a guess."""

from __future__ import annotations

import pytest

from channels.phone.survey import satisfaction_of, solved_of


@pytest.mark.parametrize(
    ("digits", "speech", "expected"),
    [
        ("1", "", True), ("2", "", False), ("3", "", None), ("", "1", True),
        ("", "解决了", True), ("", "已经处理好了", True), ("", "是的", True),
        ("", "没有解决", False), ("", "还没解决", False), ("", "没解决", False), ("", "不对，问题还在", False),
        ("", "未能解决", False), ("", "嗯……", None), ("", "你们是哪里", None), ("", "", None),
    ],
)
def test_solved(digits: str, speech: str, expected: bool | None) -> None:
    assert solved_of(digits, speech) is expected


@pytest.mark.parametrize(
    ("digits", "speech", "expected"),
    [
        ("1", "", "satisfied"), ("2", "", "basically_satisfied"), ("3", "", "unsatisfied"), ("4", "", None),
        ("", "满意", "satisfied"), ("", "非常满意", "satisfied"), ("", "基本满意", "basically_satisfied"),
        ("", "还行吧", "basically_satisfied"), ("", "不满意", "unsatisfied"), ("", "不太满意", "unsatisfied"),
        ("", "2。", "basically_satisfied"), ("", "回复3", "unsatisfied"), ("", "回1", "satisfied"),
        ("", "你们是哪里", None), ("", "", None),
    ],
)
def test_satisfaction(digits: str, speech: str, expected: str | None) -> None:
    assert satisfaction_of(digits, speech) == expected
