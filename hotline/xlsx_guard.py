"""Checks on an uploaded .xlsx before openpyxl parses it: a workbook is a zip of XML files, and both layers can be
made hostile.

- **Zip bombs**: the members' declared uncompressed sizes are summed (and the ratio to the upload checked) before
  anything is inflated; the zip reader stops at the declared size, so a member cannot inflate beyond it.
- **XML entities and DTDs** (billion laughs, external entities): no part of a real workbook declares a document
  type, so any ``<!DOCTYPE`` (or ``<!ENTITY``) in a part's prolog refuses the file. openpyxl's own parser does not
  expand entities, but refusing is clearer than parsing a document whose entities silently vanish.
- **Size**: a worksheet whose ``<dimension ref="A1:C2000000">`` announces more rows or columns than an import may
  have is refused before a row is read (the readers also stop counting at the limit, for files without it).

Every refusal is ``Invalid`` (422) with a Chinese message saying what to do.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from io import BytesIO

from hotline.errors import Invalid

MAX_UNCOMPRESSED = 64 * 1024 * 1024
MAX_RATIO = 200  # real workbooks compress 5-20 times; a bomb thousands of times
MAX_MEMBERS = 2_000
PROLOG_BYTES = 64 * 1024
_MISC = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->)?", re.S)
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"([A-Z]{1,3})?(\d+)?(?::([A-Z]{1,3})(\d+))?\"")


def _declares_dtd(head: bytes) -> bool:
    """Does the document declare a type (or have a prolog too long or odd to judge) before its root element?"""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    pos = 0
    while pos < len(text):
        match = _MISC.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
    rest = text[pos:]
    if not rest:
        return bool(text.strip()) and len(head) >= PROLOG_BYTES  # no root within the first 64 KiB
    return rest.startswith("<!") or "<!ENTITY" in rest[:PROLOG_BYTES].upper()


def _column_number(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + (ord(char) - ord("A") + 1)
    return number


def check_workbook(data: bytes, *, max_rows: int, max_columns: int = 200) -> None:
    """Refuse a workbook that is not a plain spreadsheet of at most ``max_rows`` rows; parse nothing else."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Invalid(f"不是有效的 Excel (.xlsx) 文件 (not a zip archive: {exc})") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise Invalid(f"Excel 文件的内部结构异常（{len(members)} 个部件），请在 Excel 中另存后再导入")
        total = sum(m.file_size for m in members)
        if total > MAX_UNCOMPRESSED or total > MAX_RATIO * max(len(data), 1):
            raise Invalid(
                f"Excel 文件解压后过大（{total // (1024 * 1024)} MB），请分批导入 (uncompressed size {total} bytes)"
            )
        for member in members:
            name = member.filename
            if not name.endswith((".xml", ".rels", ".vml")) or member.is_dir():
                continue
            try:
                with archive.open(member) as stream:
                    head = stream.read(PROLOG_BYTES)
                    if name.startswith("xl/worksheets/"):
                        _check_dimension(name, head, max_rows, max_columns)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise Invalid(f"Excel 文件已损坏：{name} 无法读取 (corrupt member: {exc})") from exc
            if _declares_dtd(head):
                raise Invalid(
                    f"Excel 文件中的 {name} 含有文档类型或实体声明（DOCTYPE/ENTITY），出于安全原因拒绝导入；"
                    "请在 Excel 中另存为 .xlsx 后再试 (XML entity or DTD declarations are refused)"
                )


def _check_dimension(name: str, head: bytes, max_rows: int, max_columns: int) -> None:
    match = _DIMENSION.search(head)
    if match is None:
        return
    first_col, first_row, last_col, last_row = (g.decode() if g else "" for g in match.groups())
    rows = max(int(first_row or 0), int(last_row or 0))
    columns = max(_column_number(first_col or "A"), _column_number(last_col or "A"))
    if rows > max_rows + 1:
        raise Invalid(f"工作表有 {rows} 行，超过一次导入的上限 {max_rows} 行，请分批导入 "
                      f"({name}: {rows} rows, the limit is {max_rows})")
    if columns > max_columns:
        raise Invalid(f"工作表有 {columns} 列，超过上限 {max_columns} 列，请删除多余的列后再导入 "
                      f"({name}: {columns} columns)")
