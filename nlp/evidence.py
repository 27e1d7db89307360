"""The city's own words as evidence for a category, and how they are weighed against the model.

The words come from what the city already maintains in its category tree and dispatch catalogue: category names
("燃气泄漏", "交通秩序与信号灯" -> 交通秩序, 信号灯) and the examples in a catalogue note ("社会生活噪声（广场舞、
邻里噪声）…" -> 广场舞, 邻里噪声). A word found in a message is evidence for every category it belongs to, less so
the more categories share it. The words count only as far as the model is unsure: the mixture weight is
``EVIDENCE_WEIGHT * (1 - p)`` for a model whose best category has probability ``p``. (Knowledge-article keywords
were tried as a third source and routed worse: 电动车, 饭店, 工地, 公示 name too many unrelated requests.)

``decode`` then walks the category tree from the top: the first-level category with the most probability mass
below it, then its child with the most mass, as long as that child holds more than the node itself — so mass
spread over 停水 / 水质 / 供水 still adds up to 供水 instead of losing to one broad category.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

#: words that say what kind of request it is, not what it is about
GENERIC_WORDS = frozenset({"投诉", "举报", "咨询", "建议", "求助", "收费", "补贴", "管理", "服务", "问题", "办理",
                           "申请", "其他", "综合"})
EVIDENCE_WEIGHT = 0.5
_NAME_SPLIT = re.compile(r"[与和及、，,（）()/\s]+")
_NOTE_EXAMPLES = re.compile(r"[（(]([^（）()]+)[）)]")


def name_terms(name: str) -> list[str]:
    """A category name and its parts: "交通秩序与信号灯" -> [交通秩序与信号灯, 交通秩序, 信号灯]."""
    pieces = [p for p in _NAME_SPLIT.split(name) if p]
    return _clean([name, *pieces] if len(pieces) > 1 else [name])


def note_terms(note: str) -> list[str]:
    """The examples listed in parentheses in a catalogue note."""
    out: list[str] = []
    for group in _NOTE_EXAMPLES.findall(note or ""):
        out.extend(p for p in _NAME_SPLIT.split(group) if p)
    return _clean(out)


def _clean(words: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for w in words:
        w = w.strip()
        if len(w) >= 2 and w not in GENERIC_WORDS and w not in seen:
            seen.append(w)
    return seen


class TermEvidence:
    """Find the city's category words in a message (longest match first, each word counted once)."""

    def __init__(self, terms: Mapping[str, Iterable[str]]) -> None:
        owners: dict[str, set[str]] = defaultdict(set)
        for code, words in terms.items():
            for word in _clean(words):
                owners[word].add(code)
        self._owners = {w: sorted(codes) for w, codes in owners.items()}
        words = sorted(self._owners, key=len, reverse=True)
        self._regex = re.compile("|".join(map(re.escape, words))) if words else None

    def __len__(self) -> int:
        return len(self._owners)

    def score(self, text: str) -> dict[str, float]:
        """Category code -> evidence: each word found adds 1 / (number of categories sharing it)."""
        if self._regex is None:
            return {}
        out: dict[str, float] = defaultdict(float)
        for word in {m.group(0) for m in self._regex.finditer(text or "")}:
            codes = self._owners[word]
            for code in codes:
                out[code] += 1.0 / len(codes)
        return dict(out)

    def words(self, text: str) -> list[str]:
        """The words found, for the explanation an agent reads."""
        return sorted({m.group(0) for m in self._regex.finditer(text or "")}) if self._regex else []


def mix(model: Mapping[str, float], evidence: Mapping[str, float]) -> dict[str, float]:
    """Model probabilities mixed with the evidence's shares, weighted by how unsure the model is."""
    total = sum(evidence.values())
    if total <= 0:
        return dict(model)
    weight = EVIDENCE_WEIGHT * (1.0 - max(model.values(), default=0.0))
    out = {code: (1.0 - weight) * p for code, p in model.items()}
    for code, e in evidence.items():
        out[code] = out.get(code, 0.0) + weight * e / total
    return out


class CategoryTree:
    """``subtree_mass`` and ``decode`` over one category tree, each category's chain of ancestors and its children
    found once: the suggester decodes twice per message (the model alone, then mixed with the evidence) over every
    label the model scores, and walking the parents again each time was a tenth of the worker's analysis."""

    def __init__(self, parents: Mapping[str, str | None]) -> None:
        self.parents = dict(parents)
        self._chains: dict[str, tuple[str, ...]] = {}
        self._children: dict[str, list[str]] = defaultdict(list)
        for code, parent in self.parents.items():
            if parent is not None:
                self._children[parent].append(code)

    def chain(self, code: str) -> tuple[str, ...]:
        """The code, its parent, grandparent … (stops at an unknown parent and at a cycle)."""
        found = self._chains.get(code)
        if found is None:
            nodes: list[str] = []
            node: str | None = code
            while node is not None and node not in nodes:
                nodes.append(node)
                node = self.parents.get(node)
            found = self._chains[code] = tuple(nodes)
        return found

    def subtree_mass(self, scores: Mapping[str, float]) -> dict[str, float]:
        """Each category's own score plus everything below it."""
        mass: dict[str, float] = defaultdict(float)
        chain = self.chain
        for code, value in scores.items():
            for node in chain(code):
                mass[node] += value
        return dict(mass)

    def decode(self, scores: Mapping[str, float]) -> list[tuple[str, float]]:
        """Categories best first, each with the mass at and below it: the tree walk's choice, then the other
        first-level branches' choices."""
        mass = self.subtree_mass(scores)
        # a category with mass is below ``node`` when the tree says so; one outside the tree is a first level
        children, parents = self._children, self.parents

        def descend(node: str) -> str:
            while True:
                below = [c for c in children.get(node, ()) if mass.get(c, 0.0) > 0]
                if not below:
                    return node
                best = max(below, key=lambda c: (mass[c], c))
                if mass[best] <= scores.get(node, 0.0):
                    return node
                node = best

        tops = sorted((c for c, m in mass.items() if m > 0 and parents.get(c) is None), key=lambda c: (-mass[c], c))
        return [(leaf, round(mass[leaf], 6)) for leaf in (descend(top) for top in tops)]


def subtree_mass(scores: Mapping[str, float], parents: Mapping[str, str | None]) -> dict[str, float]:
    """Each category's own score plus everything below it."""
    return CategoryTree(parents).subtree_mass(scores)


def decode(scores: Mapping[str, float], parents: Mapping[str, str | None]) -> list[tuple[str, float]]:
    """Categories best first, each with the mass at and below it: the tree walk's choice, then the other
    first-level branches' choices (``CategoryTree.decode``; build the tree once to decode many)."""
    return CategoryTree(parents).decode(scores)
