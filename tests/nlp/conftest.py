"""Shared fixtures for the nlp tests: a tiny labelled corpus written in the tests, and the shared-data path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

_TEMPLATES = {
    "城乡建设": [
        "小区{}号楼违章建筑搭建，占用公共绿地",
        "{}路施工工地夜间施工噪音，道路开挖未恢复",
        "{}小区房屋质量问题，墙体开裂漏水",
    ],
    "教育文体": [
        "{}小学乱收补课费，老师私自办补习班",
        "{}中学学生课业负担重，周末强制补课",
        "孩子在{}幼儿园入学难，学位不足",
    ],
    "劳动和社会保障": [
        "{}公司拖欠工资三个月不发，要求支付工资",
        "{}单位不给缴纳养老保险和医疗保险",
        "{}企业辞退员工不给经济补偿金",
    ],
    "交通运输": ["{}路公交车班次太少，等车一个小时", "{}出租车拒载还乱收费", "{}高速收费站拥堵，请增加车道"],
}
_PLACES = ["东湖", "西山", "南岭", "北城", "中和", "新华", "人民", "解放", "建设", "光明", "和平", "胜利"]


def tiny_records() -> list[dict[str, str]]:
    """48 short messages, 4 labels, 12 each: enough for the pipeline to learn, fast enough for unit tests."""
    records = []
    for label, templates in _TEMPLATES.items():
        for i, place in enumerate(_PLACES):
            records.append({"title": "", "text": templates[i % len(templates)].format(place), "label": label})
    return records


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in tiny_records()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data set not present at {SHARED_DATA}")
    return SHARED_DATA.resolve()
