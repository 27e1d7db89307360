"""What routing knows of the city right now: one in-memory snapshot of categories, areas, units and the dispatch
catalogue, loaded from the database. Intake's suggestion (``CitySuggester``) and the admins' "which unit would get
this?" explanation (``GET /api/route``) read the same snapshot, so they cannot disagree.

An unknown place routes as city-wide (the city area: level ``city``, no parent). Area chains are walked with a
guard, so a cycle an import might have written cannot hang a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.models import AREA_LEVELS, Area, CatalogueRule, Category, Unit
from nlp.evidence import TermEvidence, name_terms, note_terms
from nlp.places import Gazetteer, PlaceEntry
from routing.catalogue import Catalogue, RouteDecision, Rule, category_path, city_bureau_codes


@dataclass(frozen=True)
class RouteChoice:
    unit_id: int | None
    unit_name: str | None
    co_unit_ids: list[int]
    rule_id: int | None
    explanation: str


@dataclass(frozen=True)
class RoutingSnapshot:
    categories_by_name: dict[str, tuple[int, str]]  # name (any level) -> (id, code)
    category_codes: dict[int, str]
    area_paths: dict[int, list[str]]  # area id -> codes from the city down
    areas_by_code: dict[str, Area]
    units_by_code: dict[str, Unit]
    units_by_id: dict[int, Unit]
    catalogue: Catalogue
    names: dict[str, dict[str, str]]
    gazetteer: Gazetteer
    city_code: str | None
    category_parents: dict[str, str | None]  # category code -> parent code
    evidence: TermEvidence  # the words of category names and catalogue notes

    @classmethod
    def load(cls, session: Session) -> RoutingSnapshot:
        categories = list(session.scalars(select(Category).where(Category.active)))
        areas = list(session.scalars(select(Area)))
        units = list(session.scalars(select(Unit).where(Unit.active)))
        by_id = {a.id: a for a in areas}
        paths: dict[int, list[str]] = {}
        for a in areas:
            chain: list[str] = []
            cur: Area | None = a
            while cur is not None and len(chain) <= len(AREA_LEVELS) + 2:
                chain.append(cur.code)
                cur = by_id.get(cur.parent_id) if cur.parent_id else None
            paths[a.id] = list(reversed(chain))
        units_by_id = {u.id: u for u in units}
        cat_codes = {c.id: c.code for c in categories}
        rules = [
            Rule(
                id=r.id,
                category=cat_codes[r.category_id],
                area=by_id[r.area_id].code,
                lead=units_by_id[r.lead_unit_id].code,
                co=tuple(units_by_id[u].code for u in r.co_unit_ids or [] if u in units_by_id),
                note=r.note,
            )
            for r in session.scalars(select(CatalogueRule).where(CatalogueRule.active))
            if r.category_id in cat_codes and r.lead_unit_id in units_by_id and r.area_id in by_id
        ]
        gazetteer = Gazetteer(
            PlaceEntry(
                code=a.code,
                name=a.name,
                level=a.level,
                parent_code=by_id[a.parent_id].code if a.parent_id in by_id else None,
                aliases=tuple(a.aliases or ()),
            )
            for a in areas
        )
        # The catalogue's own words for each category: its name and the examples in its rules' notes (evidence
        # where the model is unsure, see nlp.evidence).
        words: dict[str, list[str]] = {c.code: name_terms(c.name) for c in categories}
        for rule in rules:
            words.setdefault(rule.category, []).extend(note_terms(rule.note))
        by_level = sorted(categories, key=lambda c: (-c.level, c.code))  # on a shared name the higher level wins
        return cls(
            categories_by_name={c.name: (c.id, c.code) for c in by_level},
            category_codes=cat_codes,
            area_paths=paths,
            areas_by_code={a.code: a for a in areas},
            units_by_code={u.code: u for u in units},
            units_by_id=units_by_id,
            catalogue=Catalogue(rules, city_bureaus=city_bureau_codes(areas, units)),
            names={
                "category": {c.code: c.name for c in categories},
                "area": {a.code: a.name for a in areas},
                "unit": {u.code: u.name for u in units},
            },
            gazetteer=gazetteer,
            city_code=next((a.code for a in areas if a.level == "city" and a.parent_id is None), None),
            category_parents={c.code: cat_codes.get(c.parent_id) if c.parent_id else None for c in categories},
            evidence=TermEvidence(words),
        )

    def area_path(self, area_id: int | None) -> list[str]:
        """The area's path from the city; an unknown place routes as city-wide."""
        path = self.area_paths.get(area_id, []) if area_id is not None else []
        return path or ([self.city_code] if self.city_code else [])

    def area_parents(self) -> dict[str, str | None]:
        """Area code -> its parent's code (None for the city), for matching places along the hierarchy."""
        parents: dict[str, str | None] = {}
        for area in self.areas_by_code.values():
            path = self.area_paths.get(area.id, [area.code])
            parents[area.code] = path[-2] if len(path) > 1 else None
        return parents

    def decide(self, category_id: int, area_id: int | None) -> RouteDecision:
        return self.catalogue.route(
            category_path(self.category_codes[category_id]), self.area_path(area_id),
            category_names=self.names["category"], area_names=self.names["area"], unit_names=self.names["unit"],
        )

    def route(self, category_id: int | None, area_id: int | None) -> RouteChoice:
        """The lead unit, co-units and the rule for a category × place, with its explanation."""
        if category_id is None or category_id not in self.category_codes:
            return RouteChoice(None, None, [], None, "未分类，需人工派单")
        decision = self.decide(category_id, area_id)
        lead = self.units_by_code.get(decision.lead) if decision.lead else None
        return RouteChoice(
            unit_id=lead.id if lead else None,
            unit_name=lead.name if lead else None,
            co_unit_ids=[self.units_by_code[c].id for c in decision.co if c in self.units_by_code],
            rule_id=decision.rule_id,
            explanation=decision.explanation,
        )

    def explain(self, category_id: int, area_id: int | None) -> tuple[RouteDecision, list[dict[str, Any]]]:
        """The decision, and every rule that covers this category × area, best first (the one used is first)."""
        cat_path = category_path(self.category_codes[category_id])
        area_path = self.area_path(area_id)
        decision = self.decide(category_id, area_id)
        index = {(r.category, r.area): r for r in reversed(self.catalogue.rules)}  # lowest id wins
        candidates: list[dict[str, Any]] = []
        for ci in range(len(cat_path), 0, -1):
            for ai in range(len(area_path), 0, -1):
                rule = index.get((cat_path[ci - 1], area_path[ai - 1]))
                if rule is None:
                    continue
                candidates.append({
                    "rule_id": rule.id,
                    "category_code": rule.category,
                    "category": self.names["category"].get(rule.category, rule.category),
                    "area_code": rule.area,
                    "area": self.names["area"].get(rule.area, rule.area),
                    "lead_code": rule.lead,
                    "lead": self.names["unit"].get(rule.lead, rule.lead),
                    "category_depth": ci,
                    "area_depth": ai,
                    "used": rule.id == decision.rule_id,
                })
        return decision, candidates
