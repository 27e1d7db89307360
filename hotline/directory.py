"""The unit directory (areas, units, dispatch catalogue) as files: CSV and Excel import/export, and route explanations.

Files name things by *code*, never by database id, so a directory exported from one installation imports into
another and an admin can edit it in Excel. Three tables (one CSV each, or one sheet each in a workbook):

- 地区 (areas): city → district → street → community; a parent is exactly one level up.
- 单位 (units): bureaus at each level, street offices, communities, enterprises; each serves one area (服务区域)
  and may have a parent unit (上级单位).
- 派单目录 (rules): category × area → lead unit (+ co-units). A rule's identity is its (category, area) pair,
  the matcher's own key (two rules with one pair are a catalogue conflict), so re-importing an edited export
  updates rules instead of duplicating them.

Decisions: an import is all or nothing. Every row is checked first (against the database *and* the rest of the
file: a new street may name a district added three rows below), every error is reported with its sheet and row
number as the admin sees it in Excel (header = row 1), and nothing is written unless the whole file is clean.
Headers may be the Chinese ones of the export or the English field names. Rows are upserted: codes that exist are
updated, new codes created; nothing is deleted by an import (deactivate with 启用 = 否).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.errors import Invalid
from hotline.models import AREA_LEVELS, UNIT_KINDS, Area, CatalogueRule, Category, Unit
from hotline.xlsx_guard import check_workbook

__all__ = [
    "KINDS",
    "TABLES",
    "export_csv",
    "export_xlsx",
    "import_directory",
    "read_csv",
    "read_xlsx",
]

KINDS: tuple[str, ...] = ("areas", "units", "rules")

#: kind -> (sheet title, [(field, Chinese header)])
TABLES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "areas": ("地区", [("code", "编码"), ("name", "名称"), ("level", "层级"), ("parent_code", "上级编码"),
                       ("aliases", "别名"), ("active", "启用")]),
    "units": ("单位", [("code", "编码"), ("name", "名称"), ("short_name", "简称"), ("kind", "类型"),
                       ("area_code", "服务区域编码"), ("parent_code", "上级单位编码"), ("phone", "电话"),
                       ("active", "启用")]),
    "rules": ("派单目录", [("id", "规则ID"), ("category_code", "分类编码"), ("area_code", "区域编码"),
                          ("lead_code", "主办单位编码"), ("co_codes", "协办单位编码"), ("note", "备注"),
                          ("active", "启用")]),
}
_SHEETS = {title: kind for kind, (title, _) in TABLES.items()}
_LIST_SEPARATORS = ("、", "|", ",", "，", ";", "；")
_TRUE = {"1", "true", "yes", "y", "是", "启用", "有效"}
_FALSE = {"0", "false", "no", "n", "否", "停用", "无效"}
MAX_ROWS = 50_000

Row = tuple[int, dict[str, str]]  # (row number as shown in Excel, field -> text)


@dataclass
class Change:
    """One row an import adds, changes or deactivates ("removed": imports never delete), as the export shows it
    (Chinese headers → values) before and after, with its row number in the file."""

    kind: str
    change: str  # added | changed | removed
    key: str
    row: int | None
    before: dict[str, Any] | None
    after: dict[str, Any]


@dataclass
class ImportReport:
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    changes: list[Change] = field(default_factory=list)


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, kind: str, row: int, message: str) -> None:
        self.items.append({"sheet": TABLES[kind][0], "kind": kind, "row": row, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            raise Invalid(
                f"导入失败：共{len(self.items)}处错误，未写入任何数据；第一处：{first['sheet']}第{first['row']}行："
                f"{first['message']}",
                errors=self.items[:200],
            )


# --- reading files -------------------------------------------------------------------------------------------


def _header_map(kind: str, header: Sequence[Any], errors: _Errors) -> dict[int, str]:
    known = {}
    for name, label in TABLES[kind][1]:
        known[name] = name
        known[label] = name
    mapping: dict[int, str] = {}
    for i, cell in enumerate(header):
        text = str(cell).strip() if cell is not None else ""
        if not text:
            continue
        if text not in known:
            errors.add(kind, 1, f"未知的列“{text}”；可用的列：{'、'.join(label for _, label in TABLES[kind][1])}")
            continue
        mapping[i] = known[text]
    required = {"rules": ("category_code", "area_code", "lead_code")}.get(kind, ("code", "name"))
    missing = [f for f in required if f not in mapping.values()]
    if missing:
        labels = dict(TABLES[kind][1])
        errors.add(kind, 1, f"缺少必需的列：{'、'.join(labels[m] for m in missing)}")
    return mapping


def _rows(kind: str, raw: Iterable[Sequence[Any]], errors: _Errors) -> list[Row]:
    it = iter(raw)
    header = next(it, None)
    if header is None:
        errors.add(kind, 1, "文件为空（缺少表头）")
        return []
    mapping = _header_map(kind, header, errors)
    rows: list[Row] = []
    for number, values in enumerate(it, start=2):
        if number > MAX_ROWS + 1:  # blank lines count too: a sheet of two million empty rows is not read to the end
            errors.add(kind, number, f"超过{MAX_ROWS}行，请分批导入")
            break
        cells = {mapping[i]: _text(v) for i, v in enumerate(values) if i in mapping}
        if not any(cells.values()):
            continue  # blank lines in Excel are common
        if len(rows) >= MAX_ROWS:
            errors.add(kind, number, f"超过{MAX_ROWS}行，请分批导入")
            break
        rows.append((number, cells))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel turns the code 3201 into 3201.0
    text = str(value).strip()
    if "\x00" in text:
        return text.replace("\x00", "")
    return text


def read_csv(kind: str, data: bytes) -> dict[str, list[Row]]:
    """One table from CSV bytes (UTF-8 with or without BOM, or GB18030 as Excel saves it on Chinese Windows)."""
    if kind not in TABLES:
        raise Invalid(f"unknown table '{kind}'; one of {', '.join(KINDS)}", field="kind")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise Invalid("CSV 文件编码无法识别（请另存为 UTF-8 或 GB18030）")
    errors = _Errors()
    rows = _rows(kind, csv.reader(io.StringIO(text, newline="")), errors)
    errors.raise_if_any()
    return {kind: rows}


def read_xlsx(data: bytes) -> dict[str, list[Row]]:
    """Every known sheet (地区, 单位, 派单目录, or the English table names) of a workbook."""
    check_workbook(data, max_rows=MAX_ROWS)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise Invalid(f"不是有效的 Excel (.xlsx) 文件：{exc}") from exc
    errors = _Errors()
    tables: dict[str, list[Row]] = {}
    try:
        for sheet in workbook.worksheets:
            kind = _SHEETS.get(sheet.title.strip()) or (sheet.title.strip() if sheet.title.strip() in TABLES else None)
            if kind is None:
                continue
            tables[kind] = _rows(kind, sheet.iter_rows(values_only=True), errors)
    finally:
        workbook.close()
    if not tables and not errors.items:
        raise Invalid(f"工作簿中没有可导入的工作表；工作表名应为：{'、'.join(t for t, _ in TABLES.values())}")
    errors.raise_if_any()
    return tables


# --- validating and writing ----------------------------------------------------------------------------------


def _flag(kind: str, row: int, value: str, errors: _Errors) -> bool:
    if not value:
        return True
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    errors.add(kind, row, f"“启用”应为 是/否，而不是“{value}”")
    return True


def _split(value: str) -> list[str]:
    for sep in _LIST_SEPARATORS[1:]:
        value = value.replace(sep, _LIST_SEPARATORS[0])
    return [v.strip() for v in value.split(_LIST_SEPARATORS[0]) if v.strip()]


def _limit(kind: str, row: int, name: str, value: str, size: int, errors: _Errors) -> None:
    if len(value) > size:
        errors.add(kind, row, f"{name}过长（最多{size}个字符）")


def import_directory(session: Session, tables: Mapping[str, list[Row]], *, dry_run: bool = False) -> ImportReport:
    """Validate every row of every table, then upsert areas, units and rules; raise ``Invalid`` with all errors.

    Flushes but never commits: the caller commits (or rolls back on ``dry_run``).
    """
    errors = _Errors()
    areas = {a.code: a for a in session.scalars(select(Area))}
    units = {u.code: u for u in session.scalars(select(Unit))}
    categories = {c.code: c for c in session.scalars(select(Category))}

    # areas: final picture = database overlaid with the file
    area_rows: dict[str, tuple[int, dict[str, str]]] = {}
    for number, cells in tables.get("areas", []):
        code = cells.get("code", "")
        if not code:
            errors.add("areas", number, "编码不能为空")
            continue
        if code in area_rows:
            errors.add("areas", number, f"编码“{code}”在第{area_rows[code][0]}行已出现")
            continue
        area_rows[code] = (number, cells)
    level_of = {code: a.level for code, a in areas.items()}
    parent_of = {code: (a.parent_id, None) for code, a in areas.items()}
    area_code_by_id = {a.id: code for code, a in areas.items()}
    final_parent: dict[str, str | None] = {
        code: area_code_by_id.get(pid) if pid else None for code, (pid, _) in parent_of.items()
    }
    for code, (number, cells) in area_rows.items():
        level = cells.get("level") or level_of.get(code, "")
        if level not in AREA_LEVELS:
            errors.add("areas", number, f"层级应为 {'/'.join(AREA_LEVELS)} 之一，而不是“{level}”")
        level_of[code] = level
        if "parent_code" in cells:
            final_parent[code] = cells["parent_code"] or None
        if not (cells.get("name") or code in areas):
            errors.add("areas", number, "名称不能为空")
        _limit("areas", number, "编码", code, 64, errors)
        _limit("areas", number, "名称", cells.get("name", ""), 100, errors)
    for code, (number, _cells) in area_rows.items():
        parent = final_parent.get(code)
        level = level_of.get(code, "")
        if level not in AREA_LEVELS:
            continue
        if parent is None:
            if level != "city":
                errors.add("areas", number, f"{level} 级地区必须填写上级编码")
            continue
        if parent not in level_of:
            errors.add("areas", number, f"上级编码“{parent}”不存在")
        elif level_of[parent] in AREA_LEVELS and AREA_LEVELS.index(level_of[parent]) != AREA_LEVELS.index(level) - 1:
            errors.add("areas", number, f"上级“{parent}”是 {level_of[parent]} 级，{level} 级地区的上级应高一级")

    # units
    unit_rows: dict[str, tuple[int, dict[str, str]]] = {}
    for number, cells in tables.get("units", []):
        code = cells.get("code", "")
        if not code:
            errors.add("units", number, "编码不能为空")
            continue
        if code in unit_rows:
            errors.add("units", number, f"编码“{code}”在第{unit_rows[code][0]}行已出现")
            continue
        unit_rows[code] = (number, cells)
    unit_code_by_id = {u.id: code for code, u in units.items()}
    unit_parent: dict[str, str | None] = {
        code: unit_code_by_id.get(u.parent_id) if u.parent_id else None for code, u in units.items()
    }
    all_units = set(units) | set(unit_rows)
    for code, (number, cells) in unit_rows.items():
        kind = cells.get("kind") or (units[code].kind if code in units else "")
        if kind not in UNIT_KINDS:
            errors.add("units", number, f"类型应为 {'/'.join(UNIT_KINDS)} 之一，而不是“{kind}”")
        if not (cells.get("name") or code in units):
            errors.add("units", number, "名称不能为空")
        area_code = cells.get("area_code", "")
        if area_code and area_code not in level_of:
            errors.add("units", number, f"服务区域编码“{area_code}”不存在")
        if "parent_code" in cells:
            unit_parent[code] = cells["parent_code"] or None
        parent = unit_parent.get(code)
        if parent and parent not in all_units:
            errors.add("units", number, f"上级单位编码“{parent}”不存在")
        _limit("units", number, "编码", code, 64, errors)
        _limit("units", number, "名称", cells.get("name", ""), 200, errors)
        _limit("units", number, "简称", cells.get("short_name", ""), 100, errors)
        _limit("units", number, "电话", cells.get("phone", ""), 32, errors)
    for code, (number, _cells) in unit_rows.items():  # a unit must not end up above itself
        seen, cur = {code}, unit_parent.get(code)
        while cur:
            if cur in seen:
                errors.add("units", number, f"上级单位形成循环：{code} → … → {cur}")
                break
            seen.add(cur)
            cur = unit_parent.get(cur)

    # rules
    rule_rows: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
    for number, cells in tables.get("rules", []):
        cat, where, lead = cells.get("category_code", ""), cells.get("area_code", ""), cells.get("lead_code", "")
        if not (cat and where and lead):
            errors.add("rules", number, "分类编码、区域编码、主办单位编码都不能为空")
            continue
        if cat not in categories:
            errors.add("rules", number, f"分类编码“{cat}”不存在")
        if where not in level_of:
            errors.add("rules", number, f"区域编码“{where}”不存在")
        for unit_code in [lead, *_split(cells.get("co_codes", ""))]:
            if unit_code not in all_units:
                errors.add("rules", number, f"单位编码“{unit_code}”不存在")
        if lead in _split(cells.get("co_codes", "")):
            errors.add("rules", number, "主办单位不能同时是协办单位")
        if (cat, where) in rule_rows:
            errors.add("rules", number, f"分类“{cat}”×区域“{where}”在第{rule_rows[(cat, where)][0]}行已有规则")
            continue
        rule_rows[(cat, where)] = (number, cells)
    flags = {
        (kind, number): _flag(kind, number, cells.get("active", ""), errors)
        for kind in KINDS
        for number, cells in tables.get(kind, [])
    }
    errors.raise_if_any()

    report = ImportReport()
    before = _export_rows(session)
    # write areas top-down so parents have ids
    for level in AREA_LEVELS:
        for code, (number, cells) in area_rows.items():
            if level_of[code] != level:
                continue
            area = areas.get(code)
            if area is None:
                area = Area(code=code, name=cells["name"], level=level, aliases=[])
                session.add(area)
                areas[code] = area
                report.created["areas"] += 1
            else:
                report.updated["areas"] += 1
            if cells.get("name"):
                area.name = cells["name"]
            area.level = level
            parent = final_parent.get(code)
            area.parent_id = areas[parent].id if parent else None
            if "aliases" in cells:
                area.aliases = _split(cells["aliases"])
            if "active" in cells:
                area.active = flags[("areas", number)]
            session.flush()
    for code, (number, cells) in unit_rows.items():
        unit = units.get(code)
        if unit is None:
            unit = Unit(code=code, name=cells["name"], kind=cells["kind"])
            session.add(unit)
            units[code] = unit
            report.created["units"] += 1
        else:
            report.updated["units"] += 1
        for name in ("name", "kind"):
            if cells.get(name):
                setattr(unit, name, cells[name])
        for name in ("short_name", "phone"):
            if name in cells:
                setattr(unit, name, cells[name] or None)
        if "area_code" in cells:
            unit.area_id = areas[cells["area_code"]].id if cells["area_code"] else None
        if "active" in cells:
            unit.active = flags[("units", number)]
    session.flush()
    for code in unit_rows:
        parent = unit_parent.get(code)
        units[code].parent_id = units[parent].id if parent else None
    existing_rules: dict[tuple[int, int], CatalogueRule] = {}
    for old in session.scalars(select(CatalogueRule).order_by(CatalogueRule.active, CatalogueRule.id.desc())):
        existing_rules[(old.category_id, old.area_id)] = old  # active, lowest id wins (last written)
    for (cat, area_code), (number, cells) in rule_rows.items():
        key = (categories[cat].id, areas[area_code].id)
        rule = existing_rules.get(key)
        if rule is None:
            rule = CatalogueRule(category_id=key[0], area_id=key[1], lead_unit_id=0, co_unit_ids=[], note="")
            session.add(rule)
            report.created["rules"] += 1
        else:
            report.updated["rules"] += 1
        rule.lead_unit_id = units[cells["lead_code"]].id
        rule.co_unit_ids = [units[c].id for c in dict.fromkeys(_split(cells.get("co_codes", "")))]
        if "note" in cells:
            rule.note = cells["note"]
        rule.active = flags[("rules", number)]
    session.flush()
    numbers = {
        "areas": {code: number for code, (number, _) in area_rows.items()},
        "units": {code: number for code, (number, _) in unit_rows.items()},
        "rules": {f"{cat}×{where}": number for (cat, where), (number, _) in rule_rows.items()},
    }
    report.changes = _changes(before, _export_rows(session), numbers)
    if dry_run:
        session.rollback()
    return report


def _keyed(kind: str, rows: list[list[Any]]) -> dict[str, dict[str, Any]]:
    labels = [label for _, label in TABLES[kind][1]]
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        values = dict(zip(labels, row, strict=True))
        key = f"{row[1]}×{row[2]}" if kind == "rules" else str(row[0])
        if kind == "rules" and key in out and out[key]["启用"] == "是":
            continue  # an older inactive rule of the same pair stays out of the picture
        out[key] = values
    return out


def _changes(before: dict[str, list[list[Any]]], after: dict[str, list[list[Any]]],
             numbers: dict[str, dict[str, int]]) -> list[Change]:
    changes: list[Change] = []
    for kind in KINDS:
        old, new = _keyed(kind, before[kind]), _keyed(kind, after[kind])
        for key, row in new.items():
            was = old.get(key)
            if was == row:
                continue
            if was is None:
                change = "added"
            elif was.get("启用") == "是" and row.get("启用") == "否":
                change = "removed"
            else:
                change = "changed"
            changes.append(Change(kind, change, key, numbers[kind].get(key), was, row))
    return changes


# --- export --------------------------------------------------------------------------------------------------


def _export_rows(session: Session) -> dict[str, list[list[Any]]]:
    areas = list(session.scalars(select(Area).order_by(Area.code)))
    units = list(session.scalars(select(Unit).order_by(Unit.code)))
    area_code = {a.id: a.code for a in areas}
    unit_code = {u.id: u.code for u in units}
    cat_code = {cid: code for cid, code in session.execute(select(Category.id, Category.code))}
    yes = {True: "是", False: "否"}
    out: dict[str, list[list[Any]]] = {
        "areas": [
            [a.code, a.name, a.level, area_code.get(a.parent_id or 0, ""), "、".join(a.aliases or []), yes[a.active]]
            for a in areas
        ],
        "units": [
            [u.code, u.name, u.short_name or "", u.kind, area_code.get(u.area_id or 0, ""),
             unit_code.get(u.parent_id or 0, ""), u.phone or "", yes[u.active]]
            for u in units
        ],
        "rules": [
            [r.id, cat_code.get(r.category_id, ""), area_code.get(r.area_id, ""), unit_code.get(r.lead_unit_id, ""),
             "、".join(unit_code.get(c, str(c)) for c in r.co_unit_ids or []), r.note, yes[r.active]]
            for r in session.scalars(select(CatalogueRule).order_by(CatalogueRule.id))
        ],
    }
    return out


def export_csv(session: Session, kind: str) -> bytes:
    """One table as CSV, UTF-8 with BOM so Excel opens the Chinese text correctly."""
    if kind not in TABLES:
        raise Invalid(f"unknown table '{kind}'; one of {', '.join(KINDS)}", field="kind")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in TABLES[kind][1]])
    writer.writerows(_export_rows(session)[kind])
    return buffer.getvalue().encode("utf-8-sig")


def export_xlsx(session: Session) -> bytes:
    """The whole directory as one workbook (sheets 地区, 单位, 派单目录), ready to edit and import back."""
    workbook = Workbook()
    rows = _export_rows(session)
    first = True
    for kind, (title, columns) in TABLES.items():
        sheet = workbook.active if first else workbook.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = title
        sheet.append([label for _, label in columns])
        for row in rows[kind]:
            sheet.append(row)
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
