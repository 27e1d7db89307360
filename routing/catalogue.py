"""The dispatch catalogue (派单目录): which unit leads (主办) a ticket of a category in an area.

Routing = category × place. A rule names a category code (hierarchical, two digits per level:
"15" ⊃ "1502" ⊃ "150201") and an area code (any level: city, district, street, community), and applies to
that category's subtree within that area's subtree. Area codes are opaque, so the caller passes the
ticket's area *path*, root first, e.g. ``("明湖市", "明湖区", "澄江街道")`` as codes; likewise the category
path root first, e.g. ``("15", "1502")`` (:func:`category_path` derives it from a code).

Which rule wins — decision: the most specific rule by ``(category depth, area depth)``, compared
lexicographically, **category first**; among rules for the same category, the deepest area wins (a street's
rule beats the district's beats the city's). Area-first was tried first (territorial responsibility, 属地管理)
and routed the demo city wrongly: a catalogue states a sub-category rule precisely because that matter is
*not* handled by the area's general unit — 社会生活噪声 (neighbours' noise) goes to the police city-wide, while
the broad "环境保护 × 东湖区" rule means the district's environment bureau for everything else. With area
first, every broad district rule would swallow those exceptions. Territorial routing is still expressed, by
rules for the sub-category at the street or district. ``specificity`` keeps reporting
``(area depth, category depth)``. Depth is the 1-based position in the path the caller passes (the city is
depth 1 when the path starts at the city).
Two rules with the same (category, area) are a catalogue conflict: the lower id wins deterministically,
:meth:`Catalogue.conflicts` lists them for the admin, and the explanation mentions it.

No match: fall back to the first-level category's city bureau; if there is none either, ``lead`` is None,
meaning "the ticket waits in the dispatcher's queue" (人工派单). Every decision carries a Chinese explanation
for the dispatcher, because a routing the dispatcher cannot understand is re-done by hand or bounced between
units.

The city bureau for a category is not a second table to keep in step: a :class:`Catalogue` built with the codes
of the city-level bureaus takes, for each first-level category, the city bureau that leads most of that
category's rules (ties: the oldest rule). So a district rule for 0101 and a city rule for 0102 led by 市住建局 make
市住建局 the fallback for any 01xx × area the catalogue does not cover. ``fallback_by_category`` overrides it.

Co-units (协办) keep their catalogue order, without duplicates and without the lead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Catalogue",
    "RouteDecision",
    "RouteSource",
    "Rule",
    "category_path",
    "route",
]

RouteSource = Literal["rule", "fallback", "queue"]

_EMPTY: Mapping[str, str] = {}


def category_path(code: str) -> tuple[str, ...]:
    """Root-first ancestors of a category code, itself included: "150201" → ("15", "1502", "150201")."""
    if not code or len(code) % 2 or not code.isascii() or not code.isdigit():
        raise ValueError(f"category code must be 2, 4 or 6… ASCII digits, got {code!r}")
    return tuple(code[:n] for n in range(2, len(code) + 1, 2))


def city_bureau_codes(areas: Iterable[Any], units: Iterable[Any]) -> set[str]:
    """Codes of the bureaus (kind "bureau") serving the city as a whole (the root area): the fallback candidates."""
    roots = {a.id for a in areas if a.parent_id is None}
    return {u.code for u in units if u.kind == "bureau" and u.area_id in roots}


def city_bureau_fallbacks(rules: Iterable[Rule], city_bureaus: set[str]) -> dict[str, str]:
    """First-level category code -> the city bureau leading most of its rules (ties: the oldest rule)."""
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    for rule in rules:
        if rule.lead not in city_bureaus:
            continue
        per_unit = counts.setdefault(category_path(rule.category)[0], {})
        n, first_id = per_unit.get(rule.lead, (0, rule.id))
        per_unit[rule.lead] = (n + 1, min(first_id, rule.id))
    return {cat: max(units.items(), key=lambda kv: (kv[1][0], -kv[1][1]))[0] for cat, units in counts.items()}


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the dispatch catalogue: category subtree × area subtree → lead unit (+ co-units)."""

    id: int
    category: str
    area: str
    lead: str
    co: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        category_path(self.category)  # validates the code
        if not self.area:
            raise ValueError(f"rule #{self.id}: area must not be empty (use the city's code for city-wide)")
        if not self.lead:
            raise ValueError(f"rule #{self.id}: lead unit must not be empty")


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a ticket goes, and why (``explanation`` is shown to the dispatcher, in Chinese)."""

    lead: str | None
    co: tuple[str, ...]
    rule_id: int | None
    explanation: str
    #: (area depth, category depth) of the matched rule; None for fallback and queue.
    specificity: tuple[int, int] | None
    source: RouteSource = "rule"
    #: ids of other rules with the same (category, area) as the winner: a catalogue conflict.
    conflicting_rule_ids: tuple[int, ...] = field(default=())


class Catalogue:
    """An index of rules by (category, area): routing costs |area path| × |category path| dict look-ups.

    Build it once per catalogue version and share it; it is immutable.
    """

    __slots__ = ("_conflicts", "_index", "_rules", "fallbacks")

    def __init__(self, rules: Iterable[Rule], city_bureaus: Iterable[str] = ()) -> None:
        self._rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: r.id))
        self.fallbacks: dict[str, str] = city_bureau_fallbacks(self._rules, set(city_bureaus))
        index: dict[tuple[str, str], Rule] = {}
        conflicts: dict[tuple[str, str], list[int]] = {}
        seen_ids: set[int] = set()
        for rule in self._rules:
            if rule.id in seen_ids:
                raise ValueError(f"duplicate rule id #{rule.id}")
            seen_ids.add(rule.id)
            key = (rule.category, rule.area)
            if key in index:
                conflicts.setdefault(key, [index[key].id]).append(rule.id)
            else:
                index[key] = rule
        self._index = index
        self._conflicts = {k: tuple(v) for k, v in conflicts.items()}

    @property
    def rules(self) -> tuple[Rule, ...]:
        """All rules, by id."""
        return self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def conflicts(self) -> list[tuple[int, ...]]:
        """Groups of rule ids sharing one (category, area); the first id of each group is the one used."""
        return sorted(self._conflicts.values())

    def match(self, category_path: Sequence[str], area_path: Sequence[str]) -> tuple[Rule, int, int] | None:
        """The winning rule with its (area depth, category depth), or None."""
        for ci in range(len(category_path), 0, -1):
            category = category_path[ci - 1]
            for ai in range(len(area_path), 0, -1):
                rule = self._index.get((category, area_path[ai - 1]))
                if rule is not None:
                    return rule, ai, ci
        return None

    def route(
        self,
        category_path: Sequence[str],
        area_path: Sequence[str],
        fallback_by_category: Mapping[str, str] | None = None,
        *,
        category_names: Mapping[str, str] | None = None,
        area_names: Mapping[str, str] | None = None,
        unit_names: Mapping[str, str] | None = None,
    ) -> RouteDecision:
        """See :func:`route`."""
        _check_category_path(category_path)
        if isinstance(area_path, str):
            raise TypeError("area_path is a sequence of area codes, root first, not a string")
        cat_names = category_names or _EMPTY
        ar_names = area_names or _EMPTY
        un_names = unit_names or _EMPTY

        found = self.match(category_path, area_path)
        if found is not None:
            rule, area_depth, cat_depth = found
            co = _clean_co(rule.lead, rule.co)
            text = (
                f"派单目录规则#{rule.id}：{_cat_label(category_path[:cat_depth], cat_names)}"
                f" × {ar_names.get(rule.area, rule.area)} → {un_names.get(rule.lead, rule.lead)}"
            )
            if co:
                text += f"（协办：{'、'.join(un_names.get(u, u) for u in co)}）"
            if rule.note:
                text += f"；备注：{rule.note}"
            others = self._conflicts.get((rule.category, rule.area), ())[1:]
            if others:
                text += f"；注意：规则{'、'.join(f'#{i}' for i in others)}与之重复，请管理员核对派单目录"
            return RouteDecision(
                lead=rule.lead,
                co=co,
                rule_id=rule.id,
                explanation=text,
                specificity=(area_depth, cat_depth),
                source="rule",
                conflicting_rule_ids=others,
            )

        where = (
            f"{_cat_label(category_path, cat_names) or '未分类'}"
            f" × {ar_names.get(area_path[-1], area_path[-1]) if area_path else '地点不明'}"
        )
        first = category_path[0] if category_path else None
        fallback = (fallback_by_category or self.fallbacks).get(first) if first else None
        if fallback:
            first_name = cat_names.get(first, first) if first else ""
            return RouteDecision(
                lead=fallback,
                co=(),
                rule_id=None,
                explanation=(
                    f"派单目录无匹配规则（{where}），按一级分类“{first_name}”兜底"
                    f" → {un_names.get(fallback, fallback)}"
                ),
                specificity=None,
                source="fallback",
            )
        return RouteDecision(
            lead=None,
            co=(),
            rule_id=None,
            explanation=f"派单目录无匹配规则（{where}），且无兜底单位 → 进入派单员待派队列，请人工派单",
            specificity=None,
            source="queue",
        )


def route(
    rules: Catalogue | Iterable[Rule],
    category_path: Sequence[str],
    area_path: Sequence[str],
    fallback_by_category: Mapping[str, str] | None = None,
    *,
    category_names: Mapping[str, str] | None = None,
    area_names: Mapping[str, str] | None = None,
    unit_names: Mapping[str, str] | None = None,
) -> RouteDecision:
    """Route a ticket by category × area through the dispatch catalogue.

    :param rules: a :class:`Catalogue` (build once, route many) or plain rules (indexed on every call).
    :param category_path: the ticket's category and its ancestors, root first, e.g. ``("15", "1502")``;
        may be empty for an unclassified ticket (then only the dispatcher's queue remains).
    :param area_path: the ticket's area and its ancestors, root (city) first; empty if the place is unknown.
    :param fallback_by_category: first-level category code → city bureau used when no rule matches.
    :param category_names/area_names/unit_names: code → Chinese name, only for the explanation.
    """
    catalogue = rules if isinstance(rules, Catalogue) else Catalogue(rules)
    return catalogue.route(
        category_path,
        area_path,
        fallback_by_category,
        category_names=category_names,
        area_names=area_names,
        unit_names=unit_names,
    )


def _check_category_path(path: Sequence[str]) -> None:
    """Reject a leaf-first or broken path early: it would silently match the wrong rules."""
    if isinstance(path, str):
        raise TypeError("category_path is a sequence of codes, root first; use category_path(code)")
    previous = ""
    for code in path:
        if not code.startswith(previous) or len(code) != len(previous) + 2 or not code.isdigit():
            raise ValueError(f"category path must go root first, two digits per level: {tuple(path)!r}")
        previous = code


def _cat_label(path: Sequence[str], names: Mapping[str, str]) -> str:
    return "/".join(names.get(code, code) for code in path)


def _clean_co(lead: str, co: Iterable[str]) -> tuple[str, ...]:
    seen = {lead}
    out: list[str] = []
    for unit in co:
        if unit and unit not in seen:
            seen.add(unit)
            out.append(unit)
    return tuple(out)
