"""Phone numbers between Twilio (E.164, ``+8613812345678``) and the hotline's records (what an agent types:
``13812345678``, ``057187654321``).

A caller is stored under the national form, so the screen-pop finds the tickets an agent typed in for the same
person, and a status question by phone compares like with like. SMS and calls go out in E.164.
"""

from __future__ import annotations

import re

CHINA = "+86"
_E164 = re.compile(r"^\+[1-9]\d{5,14}$")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CN_LANDLINE = re.compile(r"^0[1-9]\d{8,10}$")


def national(number: str) -> str | None:
    """The form kept on the citizen: ``+8613812345678`` -> ``13812345678``, ``+8657187654321`` ->
    ``057187654321``; other countries stay E.164. None for what is no phone number (``anonymous``, ``client:…``,
    Twilio's ``+266696687`` for a withheld number)."""
    number = number.strip().replace(" ", "").replace("-", "")
    if not _E164.match(number) or number == "+266696687":
        return None
    if number.startswith(CHINA):
        rest = number[len(CHINA):]
        return rest if _CN_MOBILE.match(rest) else "0" + rest
    return number


def e164(number: str) -> str | None:
    """The form Twilio dials: ``13812345678`` -> ``+8613812345678``, ``057187654321`` -> ``+8657187654321``."""
    number = number.strip().replace(" ", "").replace("-", "")
    if _E164.match(number):
        return number
    if _CN_MOBILE.match(number):
        return CHINA + number
    if _CN_LANDLINE.match(number):
        return CHINA + number[1:]
    return None


def takes_sms(number: str) -> bool:
    """A Chinese landline cannot receive a text message; a mobile or a foreign number may."""
    dialled = e164(number)
    if dialled is None:
        return False
    return not dialled.startswith(CHINA) or bool(_CN_MOBILE.match(dialled[len(CHINA):]))
