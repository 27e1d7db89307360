"""Reading the citizen's answers to the automated 回访, keyed (DTMF), said (speech transcript) or texted (SMS).

The values are the workflow's callback values: ``solved`` a bool, ``satisfaction`` one of ``satisfied``,
``basically_satisfied``, ``unsatisfied``. ``None`` means the answer could not be understood (ask again, or leave
the ticket to the agents' callback queue) — never a guess.
"""

from __future__ import annotations

import re
from typing import Literal

Satisfaction = Literal["satisfied", "basically_satisfied", "unsatisfied"]

SATISFACTION_KEYS: dict[str, Satisfaction] = {"1": "satisfied", "2": "basically_satisfied", "3": "unsatisfied"}

# Negations first: "没有解决" contains "解决", "不满意" contains "满意".
_UNSOLVED = re.compile(r"没有?(得到)?(彻底)?解决|未(能|被)?解决|不解决|还没|没弄好|没有处理|不是|不对|否")
_SOLVED = re.compile(r"解决|处理好|处理完|弄好|修好|好了")
_YES = re.compile(r"^(是|是的|对|对的|嗯|有)[。！!，,]?$")
_UNSATISFIED = re.compile(r"不(太|很|怎么)?满意|很差|太差|差评")
_BASICALLY = re.compile(r"基本|还行|一般|还可以|凑合")
_SATISFIED = re.compile(r"满意|很好|非常好|挺好")
_DIGIT = re.compile(r"^\s*([0-9])\s*[#。.！!]?\s*$")


def _key(digits: str, speech: str) -> str | None:
    """A single key, pressed or said as a lone digit ("1", "1。")."""
    for text in (digits, speech):
        m = _DIGIT.match(text or "")
        if m:
            return m.group(1)
    return None


def solved_of(digits: str = "", speech: str = "") -> bool | None:
    """1 / "解决了" -> True, 2 / "没有解决" -> False, anything else -> None."""
    key = _key(digits, speech)
    if key is not None:
        return {"1": True, "2": False}.get(key)
    if _UNSOLVED.search(speech):
        return False
    if _SOLVED.search(speech) or _YES.match(speech.strip()):
        return True
    return None


def satisfaction_of(digits: str = "", speech: str = "") -> Satisfaction | None:
    """1 / "满意", 2 / "基本满意", 3 / "不满意"; anything else -> None. Also reads an SMS reply ("1", "回复3")."""
    key = _key(digits, speech)
    if key is not None:
        return SATISFACTION_KEYS.get(key)
    text = speech.strip()
    m = re.fullmatch(r"回复?\s*([0-9])\s*", text)
    if m:
        return SATISFACTION_KEYS.get(m.group(1))
    if _UNSATISFIED.search(text):
        return "unsatisfied"
    if _BASICALLY.search(text):
        return "basically_satisfied"
    if _SATISFIED.search(text):
        return "satisfied"
    return None
