import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", "nlp", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_train_then_evaluate_round_trip(tiny_corpus: Path, tmp_path: Path):
    model_dir = tmp_path / "model"
    trained = _cli("train", "--data", str(tiny_corpus), "--out", str(model_dir), "--json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["labels"] == ["交通运输", "劳动和社会保障", "城乡建设", "教育文体"]
    evaluated = _cli("evaluate", "--model", str(model_dir), "--data", str(tiny_corpus), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert {"macro_f1", "accuracy", "per_label", "msgs_per_s", "reliability"} <= set(result)
    assert set(result["per_label"]["教育文体"]) == {"precision", "recall", "f1", "support"}
    assert result["accuracy"] > 0.9
    chosen = json.loads(trained.stdout)["chosen"]
    assert result["selection"]["chosen"] == chosen
    assert chosen in {c["name"] for c in result["selection"]["candidates"]}


def test_bad_records_exit_2_with_one_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "路灯不亮", "label": "城乡建设"}\n{"text": "井盖"}\n', encoding="utf-8")
    result = _cli("train", "--data", str(bad), "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "line 2: missing 'label'" in result.stderr


def test_evaluate_without_a_model_exits_2(tiny_corpus: Path, tmp_path: Path):
    result = _cli("evaluate", "--model", str(tmp_path), "--data", str(tiny_corpus), "--json")
    assert result.returncode == 2 and "not a model directory" in result.stderr
