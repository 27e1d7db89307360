"""Labels that are paths in a category tree ("水电气热/燃气/燃气泄漏"), and how thin ones are merged upwards.

A label names the most specific category a message belongs to, with every ancestor before it, so one model serves
cities whose trees differ below the first level: the city resolves a label to the deepest category name it knows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Sequence

SEPARATOR = "/"


def parts(label: str) -> list[str]:
    return [p for p in label.split(SEPARATOR) if p]


def first_level(label: str) -> str:
    """The first-level category of a path label ("水电气热/燃气" -> "水电气热")."""
    return parts(label)[0] if parts(label) else label


def parent(label: str) -> str | None:
    names = parts(label)
    return SEPARATOR.join(names[:-1]) if len(names) > 1 else None


def coarsen(labels: Sequence[str], min_count: int) -> dict[str, str]:
    """Label -> the label to train on: itself, or its nearest ancestor when it has fewer than ``min_count``
    examples (counting those merged into it from below). First-level labels are never merged; one left with too
    few examples of its own absorbs its smallest subcategories instead."""
    pending = Counter(labels)
    step: dict[str, str] = {}
    for depth in range(max((len(parts(label)) for label in pending), default=0), 1, -1):
        for label in sorted(label for label in pending if len(parts(label)) == depth):
            up = parent(label)
            if up is not None and pending[label] < min_count:
                pending[up] += pending.pop(label)
                step[label] = up
    # A label still short of examples after the climb (a first-level one, which never merges upwards, or a parent
    # whose thin children went elsewhere) takes in its smallest remaining children until it has enough: otherwise a
    # ticket filed only as "劳动和社会保障" would be a class of one beside its well-filled subcategories.
    for label in sorted((label for label in pending if 0 < pending[label] < min_count),
                        key=lambda label: -len(parts(label))):
        children = sorted((child for child in pending if parent(child) == label), key=lambda c: (pending[c], c))
        for child in children:
            if pending[label] >= min_count:
                break
            pending[label] += pending.pop(child)
            step[child] = label

    def final(label: str) -> str:
        while label in step:
            label = step[label]
        return label

    return {label: final(label) for label in set(labels)}


def resolve(label: str, known: Container[str]) -> str | None:
    """The deepest name along the label's path that the city's category tree knows, or None."""
    for name in reversed(parts(label)):
        if name in known:
            return name
    return None
