"""Bounded input types shared by every route, schema and protocol message.

- **Ids** within the database's integer range: every id column is a 32-bit ``INTEGER`` (1..2^31-1); a bigger
  number cannot name a row, and PostgreSQL would answer it with an overflow error where SQLite would quietly look
  it up. ``MAX_BIG_ID`` (2^63-1) bounds numbers that are not column values (none at the moment is bigger).
- **Times and days** within a plausible window, 2000-01-01..2100-12-31 in the city's calendar: year 1 or 9999
  overflow as soon as they are shifted to UTC or given a working-time deadline (a 500), and a ticket "received" in
  year 1 or a supervision order "due" in 9999 is a typing error, not a date. Times must carry a time zone.
- **Text** without NUL characters or lone surrogates: PostgreSQL refuses both, SQLite would store them.

Each refusal is a 422 whose message is Chinese for the desk, with the English after it; the error ``type``
(``id_out_of_range``, ``time_out_of_range`` …) is the machine-readable part. Checking at the edge gives the same
clear 422 on either database instead of a 500 from the driver.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
WINDOW = f"{FIRST_DAY.isoformat()} 至 {LAST_DAY.isoformat()}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    if _SURROGATE.search(value):  # a regex, not a loop over the characters: every intake's text passes here
        raise ValueError("text must be valid Unicode (lone surrogate found)")
    return value


def _out_of_window() -> PydanticCustomError:
    return PydanticCustomError(
        "time_out_of_range",
        "日期或时间须在 {window} 之间 (dates and times must lie between {first} and {last})",
        {"window": WINDOW, "first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
    )


def day_in_window(value: date) -> date:
    if isinstance(value, datetime):
        value = value.date()
    if not FIRST_DAY <= value <= LAST_DAY:
        raise _out_of_window()
    return value


def moment_in_window(value: datetime) -> datetime:
    """An aware time inside the window, judged on its own calendar date before any arithmetic (year 1 at +14:00
    cannot even be converted to UTC)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "time_without_zone",
            "时间须带时区，例如 2026-11-22T09:30:00+08:00 (a time needs a time zone)",
        )
    if not FIRST_DAY <= value.date() <= LAST_DAY:
        raise _out_of_window()
    if not FIRST_DAY <= value.astimezone(UTC).date() <= LAST_DAY:
        raise _out_of_window()
    return value


def id_in_range(value: object, maximum: int = MAX_ID) -> int:
    """An id from free-form input (a comma list, a JWT claim, a protocol message): an int in 1..``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("an id must be an integer")
    text = value.strip() if isinstance(value, str) else ""
    number = value if isinstance(value, int) else int(text) if text.isascii() and text.isdigit() else None
    if number is None or not 1 <= number <= maximum:
        raise ValueError(f"an id must be an integer between 1 and {maximum}")
    return number


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Day = Annotated[date, AfterValidator(day_in_window)]
Moment = Annotated[datetime, AfterValidator(moment_in_window)]
NoNul = AfterValidator(_no_nul)
