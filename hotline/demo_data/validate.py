"""Consistency check for the demo-city data: run ``.venv/bin/python hotline/demo_data/validate.py``.

The loaders trust these files (codes act as foreign keys), so every reference must resolve and the counts
must stay in the ranges the demo relies on. Exits non-zero and lists the problems when something is off.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hotline.models import AREA_LEVELS, UNIT_KINDS, Kind

HERE = Path(__file__).parent
FIRST_LEVEL = [
    *("城乡建设", "环境保护", "交通运输", "教育文体", "劳动和社会保障", "商贸旅游", "卫生计生", "公共安全"),
    *("市场监管", "水电气热", "民政", "自然资源", "农业农村", "住房公积金", "城市管理", "政务服务"),
]
LEVELS = list(AREA_LEVELS)
KINDS = {k.value for k in Kind}
CHANNELS = {"phone", "wechat", "forum", "web"}
PHONE = re.compile(r"^13[89]0000\d{4}$")

errors: list[str] = []


def check(ok: bool, msg: str) -> None:
    if not ok:
        errors.append(msg)


def load(name: str) -> list[dict[str, Any]]:
    data = json.loads((HERE / name).read_text(encoding="utf-8"))
    assert isinstance(data, list), name
    return data


def unique(rows: list[dict[str, Any]], key: str, what: str) -> dict[str, dict[str, Any]]:
    dupes = [k for k, n in Counter(r[key] for r in rows).items() if n > 1]
    check(not dupes, f"{what}: duplicate {key}: {dupes}")
    return {r[key]: r for r in rows}


areas, units, cats = load("areas.json"), load("units.json"), load("categories.json")
rules, kb, tickets = load("catalogue.json"), load("knowledge.json"), load("tickets.json")
A, U, C = unique(areas, "code", "areas"), unique(units, "code", "units"), unique(cats, "code", "categories")
unique(kb, "title", "knowledge")

for a in areas:
    p = a["parent"]
    check(a["level"] in LEVELS, f"area {a['code']}: bad level")
    if p is None:
        check(a["level"] == "city", f"area {a['code']}: no parent")
    else:
        check(
            p in A and LEVELS.index(A[p]["level"]) + 1 == LEVELS.index(a["level"]),
            f"area {a['code']}: parent",
        )
names = Counter(n for a in areas for n in [a["name"], *a["aliases"]])
check(
    all(n == 1 for n in names.values()),
    f"ambiguous area names/aliases: {[k for k, n in names.items() if n > 1]}",
)


def ancestors(code: str | None) -> set[str]:
    out: set[str] = set()
    while code:
        out.add(code)
        code = A[code]["parent"]
    return out


for u in units:
    check(u["kind"] in UNIT_KINDS, f"unit {u['code']}: kind")
    check(u["area"] in A, f"unit {u['code']}: area")
    check(u["parent"] is None or u["parent"] in U, f"unit {u['code']}: parent")
check(U.get("mh-12345", {}).get("kind") == "hotline", "no hotline unit mh-12345")

top = [c for c in cats if c["parent"] is None]
check(
    [(c["code"], c["name"]) for c in top] == [(f"{i + 1:02d}", n) for i, n in enumerate(FIRST_LEVEL)],
    "level 1",
)
for c in cats:
    p = c["parent"]
    check(
        p is None or (p in C and c["code"].startswith(p) and len(c["code"]) == len(p) + 2), f"cat {c['code']}"
    )
for c in top:
    n = sum(1 for x in cats if x["parent"] == c["code"])
    check(3 <= n <= 6, f"category {c['code']} has {n} children")

for r in rules:
    check(r["category"] in C and r["area"] in A and r["lead"] in U, f"rule {r}")
    check(all(x in U for x in r["co"]), f"rule co-units {r}")
pairs = Counter((r["category"], r["area"]) for r in rules)
check(all(n == 1 for n in pairs.values()), "duplicate catalogue (category, area)")
for c in top:
    check((c["code"], "mh") in pairs, f"no city-level rule for {c['code']}")

for k in kb:
    check(k["category"] in C and 150 <= len(k["body"]) <= 500, f"knowledge {k['title']}")

alias_of = {n: a["code"] for a in areas for n in [a["name"], *a["aliases"]]}
for t in tickets:
    tag = f"ticket {t['title']}"
    check(t["category"] in C and t["kind"] in KINDS and t["channel"] in CHANNELS, tag)
    check(40 <= len(t["text"]) <= 300 and 60 <= len(t["reply"]) <= 200, f"{tag}: length")
    check(t["citizen"] is None or bool(PHONE.match(t["citizen"]["phone"])), f"{tag}: phone")
    if t["area"] is not None:
        check(t["area"] in A, f"{tag}: area")
        check(any(n in t["text"] for n in [A[t["area"]]["name"], *A[t["area"]]["aliases"]]), f"{tag}: place")
    # every place the text names must be the ticket's area or one of its ancestors
    found = {code for n, code in alias_of.items() if n in t["text"]}
    found -= {alias_of[n] for n in alias_of for m in alias_of if n != m and n in m and m in t["text"]}
    allowed = ancestors(t["area"]) | {"mh"}  # naming the city itself is fine anywhere
    check(found <= allowed, f"{tag}: mentions {found - allowed}")

districts = {a["code"] for a in areas if a["level"] == "district"}
covered = {d for t in tickets for d in districts if t["area"] and d in ancestors(t["area"])}
check(covered == districts, f"districts without tickets: {districts - covered}")
check(
    {t["category"][:2] for t in tickets} == {c["code"] for c in top}, "first-level categories without tickets"
)

counts = {
    "areas": len(areas),
    "units": len(units),
    "categories": len(cats),
    "catalogue": len(rules),
    "knowledge": len(kb),
    "tickets": len(tickets),
}
for name, (lo, hi) in {
    "units": (40, 70),
    "catalogue": (60, 120),
    "knowledge": (40, 70),
    "tickets": (240, 300),
}.items():
    check(lo <= counts[name] <= hi, f"{name}: {counts[name]} not in {lo}..{hi}")

print(" ".join(f"{k}={v}" for k, v in counts.items()))
print("areas by level:", dict(Counter(a["level"] for a in areas)))
print("units by kind:", dict(Counter(u["kind"] for u in units)))
print("categories by level:", dict(Counter(len(c["code"]) // 2 for c in cats)))
print("rules by area level:", dict(Counter(A[r["area"]]["level"] for r in rules)))
flags = {
    "urgent": sum(t["urgent"] for t in tickets),
    "confidential": sum(t["confidential"] for t in tickets),
    "anonymous": sum(t["citizen"] is None for t in tickets),
    "praise": sum(t["kind"] == "praise" for t in tickets),
    "with area": sum(t["area"] is not None for t in tickets),
}
print("tickets:", flags)
print("tickets by kind:", dict(Counter(t["kind"] for t in tickets)))
print("tickets by channel:", dict(Counter(t["channel"] for t in tickets)))
print("tickets by first-level category:", dict(sorted(Counter(t["category"][:2] for t in tickets).items())))
print(
    "tickets by district:",
    dict(Counter(next((d for d in districts if d in ancestors(t["area"])), "none") for t in tickets)),
)
if errors:
    print(f"\n{len(errors)} problem(s):", *errors, sep="\n  ")
    sys.exit(1)
print("OK")
