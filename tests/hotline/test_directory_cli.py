"""``hotline directory export|import``: the same all-or-nothing import as the API, from a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.routing_commands import main
from hotline.settings import get_settings
from tests.conftest import City


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", db_url)
    monkeypatch.setenv("HOTLINE_DEMO", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_export_then_import_with_a_bad_row(cli_env: None, city: City, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "directory.xlsx"
    assert main(["directory", "export", str(out)]) == 0
    assert main(["directory", "import", str(out), "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    bad = tmp_path / "units.csv"
    bad.write_text("编码,名称,类型\nmh-new,新单位,spaceship\n", encoding="utf-8")
    assert main(["directory", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "单位 第2行" in err and "spaceship" in err
    assert main(["directory", "import", str(tmp_path / "missing.csv")]) == 2
