"""Places named in a message, matched against the city's gazetteer along its area hierarchy."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nlp.segment import DOMAIN_TERMS, join_segmented

#: area levels from the top down; a place of a lower level implies its ancestors
LEVELS = ("city", "district", "street", "community")
_LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}


@dataclass(frozen=True)
class PlaceEntry:
    code: str
    name: str
    level: str
    parent_code: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaceMatch:
    """A place named in the text. ``matched`` is the text that named it; None when only implied by a child."""

    code: str
    name: str
    level: str
    matched: str | None


class Gazetteer:
    """Find the city's places in a message; a community implies its street, district and city.

    Matching is one compiled regex alternation of all names and aliases, longest first, so "明湖区人民路街道"
    is found as the street, not as the shorter district name inside it. Names shared by several places (two
    "新村社区") are disambiguated by the other places the message names; if that fails all candidates are kept.
    """

    def __init__(self, entries: Iterable[PlaceEntry]) -> None:
        self.entries: dict[str, PlaceEntry] = {}
        self._by_name: dict[str, list[str]] = {}
        for entry in entries:
            if entry.level not in _LEVEL_RANK:
                raise ValueError(f"place {entry.code}: level must be one of {', '.join(LEVELS)}, not {entry.level!r}")
            self.entries[entry.code] = entry
            for name in (entry.name, *entry.aliases):
                key = join_segmented(name)
                if len(key) >= 2 and entry.code not in self._by_name.setdefault(key, []):
                    self._by_name[key].append(entry.code)
        names = sorted(self._by_name, key=len, reverse=True)
        self._regex = re.compile("|".join(map(re.escape, names))) if names else None

    def __len__(self) -> int:
        return len(self.entries)

    def ancestors(self, code: str) -> list[str]:
        """Parent, grandparent, ... of ``code`` (stops at unknown codes and cycles)."""
        out: list[str] = []
        seen = {code}
        parent = self.entries[code].parent_code if code in self.entries else None
        while parent and parent in self.entries and parent not in seen:
            out.append(parent)
            seen.add(parent)
            parent = self.entries[parent].parent_code
        return out

    def find(self, text: str) -> list[PlaceMatch]:
        """Places in ``text``, most specific level first (community, street, district, city), then by position."""
        if self._regex is None:
            return []
        norm = join_segmented(text or "")
        hits: list[tuple[int, str, list[str]]] = [
            (m.start(), m.group(0), self._by_name[m.group(0)]) for m in self._regex.finditer(norm)
        ]
        named = {code for _, _, codes in hits for code in codes}
        chosen: dict[str, tuple[int, str | None]] = {}
        for pos, matched, codes in hits:
            if len(codes) > 1:
                # Keep the candidates whose ancestors or descendants are also named in the text.
                related = [
                    c
                    for c in codes
                    if any(a in named for a in self.ancestors(c))
                    or any(c in self.ancestors(o) for o in named if o != c)
                ]
                codes = related or codes
            for code in codes:
                if code not in chosen or chosen[code][1] is None:
                    chosen[code] = (pos, matched)
        for code, (pos, _) in list(chosen.items()):
            for parent in self.ancestors(code):
                if parent not in chosen:
                    chosen[parent] = (pos, None)
        matches = sorted(chosen.items(), key=lambda kv: (-_LEVEL_RANK[self.entries[kv[0]].level], kv[1][0], kv[0]))
        return [
            PlaceMatch(code, self.entries[code].name, self.entries[code].level, matched)
            for code, (_, matched) in matches
        ]

    def related(self, a: str | None, b: str | None) -> bool:
        """Same-place rule for duplicates: unknown matches anything; else one is the other or its ancestor."""
        if a is None or b is None or a == b:
            return True
        return a in self.ancestors(b) or b in self.ancestors(a)

    def names(self) -> list[str]:
        """Every name and alias (for the segmenter's user dictionary)."""
        return list(self._by_name)


_NUMBER = r"[0-9０-９一二三四五六七八九十百零〇]+"
#: what citizens add after an estate's or road's name: 小区, 二期, 南门, 3栋 / 5号楼, 2单元, 101室
_ADDRESS_TAIL = re.compile(
    rf"(?:小区|花园|新村|家园|社区)?(?:{_NUMBER}期)?(?:[东南西北](?:大|侧|小)?门)?"
    rf"(?:{_NUMBER}(?:号楼|栋|幢|座|号院|号))?(?:{_NUMBER}单元)?(?:{_NUMBER}(?:室|层|楼|号))?"
)


def place_phrase(text: str, matched: str) -> str:
    """The place as the message names it, from a gazetteer match on: "金桂园" in "金桂园小区3栋2单元的楼道" ->
    "金桂园小区3栋2单元", "幸福里" in "幸福里小区南门门口" -> "幸福里小区南门". ``matched`` alone if not found."""
    norm = join_segmented(text or "")
    at = norm.find(matched)
    if at < 0:
        return matched
    tail = _ADDRESS_TAIL.match(norm, at + len(matched))
    return matched + (tail.group(0) if tail else "")


def user_words(gazetteer: Gazetteer | None = None, unit_names: Iterable[str] = ()) -> list[str]:
    """Words the Segmenter must keep whole: place names and aliases, unit names, and domain terms."""
    words: list[str] = list(DOMAIN_TERMS)
    if gazetteer is not None:
        words.extend(gazetteer.names())
    words.extend(n for n in unit_names if n)
    seen: set[str] = set()
    return [w for w in words if not (w in seen or seen.add(w))]  # type: ignore[func-returns-value]
