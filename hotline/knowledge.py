"""When a knowledge article may be offered: its validity dates, the one home of that rule.

An article is *in effect* on the days from ``valid_from`` to ``valid_to``, both included, in the city's calendar
(an open end means "always" on that side). Outside them it is ``pending`` (未生效, a rule announced before it
applies) or ``expired`` (已过期, a fee or procedure that changed). Only articles in effect are offered: the agent's
analysis panel, the suggester's knowledge hits and WeChat's direct answers all search through
``hotline.services.Services.knowledge_search``, which applies this rule on the day of the search; admins still see
every article, marked with its state, to renew or retire it.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

Validity = Literal["current", "expired", "pending"]


def validity(valid_from: date | None, valid_to: date | None, day: date) -> Validity:
    if valid_from is not None and day < valid_from:
        return "pending"
    if valid_to is not None and day > valid_to:
        return "expired"
    return "current"


def in_effect(valid_from: date | None, valid_to: date | None, day: date) -> bool:
    return validity(valid_from, valid_to, day) == "current"
