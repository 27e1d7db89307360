"""Input types shared by every schema: ids within the database's integer range, text without NUL characters.

PostgreSQL refuses NUL in text and ids beyond 2^31-1 overflow its integer columns; SQLite would quietly accept
both. Checking at the edge gives the same clear 422 on either database instead of a 500 from the driver.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_ID = 2**31 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("text must be valid Unicode (lone surrogate found)")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
NoNul = AfterValidator(_no_nul)
