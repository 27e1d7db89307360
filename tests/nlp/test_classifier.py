import json
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp.classifier import (
    CANDIDATES,
    FORMAT_VERSION,
    CalibratedLinearSVC,
    Candidate,
    DataError,
    IncompatibleModelError,
    Model,
    Record,
    TextFeatures,
    Trial,
    _softmax_rows,
    choose_threshold,
    load_records,
    parse_records,
    reliability_table,
    select,
)

from .conftest import tiny_records


@pytest.fixture(scope="module")
def tiny_model() -> Model:
    return Model.train([Record(**r) for r in tiny_records()], n_jobs=1)


def test_bad_records_are_reported_with_their_line_numbers():
    lines = [
        '{"text": "路灯不亮", "label": "城乡建设"}',
        "{not json",
        '{"text": "公交太少"}',
        "",
        '{"label": "教育文体"}',
        '{"text": "  ", "label": "x"}',
        "[1, 2]",
    ]
    with pytest.raises(DataError) as err:
        parse_records(lines)
    assert err.value.problems == [
        "line 2: invalid JSON (Expecting property name enclosed in double quotes)",
        "line 3: missing 'label'",
        "line 5: missing 'text'",
        "line 6: 'text' must be a non-empty string",
        "line 7: expected a JSON object",
    ]


def test_unreadable_file_is_a_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="cannot read"):
        load_records([tmp_path / "missing.jsonl"])


def test_training_refuses_fewer_than_two_labels():
    with pytest.raises(DataError, match="at least 2 different labels"):
        Model.train([Record("路灯不亮", "城乡建设"), Record("井盖丢失", "城乡建设")])


def test_training_refuses_a_label_with_one_example():
    records = [Record("路灯不亮", "城乡建设"), Record("井盖丢失", "城乡建设"), Record("学校收费", "教育文体")]
    with pytest.raises(DataError, match="'教育文体' has only 1 example"):
        Model.train(records)


def test_predict_gives_top_k_labels_with_probabilities_summing_to_at_most_one(tiny_model: Model):
    top = tiny_model.predict("", "东湖公司拖欠工资半年不发", k=3)
    assert top[0][0] == "劳动和社会保障"
    assert len(top) == 3
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001


def test_predict_many_matches_predict(tiny_model: Model):
    items = [("", "小学乱收补课费"), ("公交", "公交车班次太少")]
    assert tiny_model.predict_many(items) == [tiny_model.predict(*it) for it in items]


def test_save_and_load_round_trip_keeps_predictions_and_metadata(tiny_model: Model, tmp_path: Path):
    tiny_model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text(encoding="utf-8"))
    for key in ("labels", "training_data", "created", "libraries", "validation", "auto_dispatch"):
        assert key in meta
    assert {"scikit-learn", "numpy", "scipy", "jieba"} <= set(meta["libraries"])
    assert {"threshold", "share"} <= set(meta["auto_dispatch"])
    loaded = Model.load(tmp_path / "m")
    assert loaded.predict("", "孩子幼儿园入学难") == tiny_model.predict("", "孩子幼儿园入学难")


def test_model_from_another_scikit_learn_version_is_refused(tiny_model: Model, tmp_path: Path):
    tiny_model.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["libraries"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IncompatibleModelError, match=r"scikit-learn 0\.24\.2.*retrain"):
        Model.load(tmp_path / "m")


def test_loading_a_directory_without_a_model_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        Model.load(tmp_path)


def test_the_same_pipeline_works_on_another_taxonomy():
    records = [Record(f"{p}小区停水停电", "水电气热") for p in ["东", "西", "南", "北", "中"]] + [
        Record(f"{p}区办证窗口排队太久", "政务服务") for p in ["东", "西", "南", "北", "中"]
    ]
    model = Model.train(records, n_jobs=1)
    assert model.labels == ["政务服务", "水电气热"]
    assert model.predict("", "小区停水了", k=3)[0][0] == "水电气热"
    assert len(model.predict("", "小区停水了", k=3)) == 2


def test_threshold_is_the_lowest_probability_whose_tickets_are_accurate_enough():
    probs = np.array([0.99] * 50 + [0.8] * 50 + [0.6] * 50)
    correct = np.array([True] * 50 + [True] * 48 + [False] * 2 + [True] * 30 + [False] * 20)
    threshold, share, acc = choose_threshold(probs, correct, target=0.97)
    assert threshold == 0.8 and share == pytest.approx(100 / 150) and acc == pytest.approx(0.98)


def test_unreachable_target_means_no_auto_dispatch():
    threshold, share, _ = choose_threshold(np.array([0.9] * 30), np.array([True] * 20 + [False] * 10))
    assert threshold > 1.0 and share == 0.0


def test_reliability_table_counts_every_prediction_once():
    probs = np.array([0.3, 0.55, 0.95, 1.0, 0.91])
    rows = reliability_table(probs, np.array([False, True, True, True, False]))
    assert sum(r["count"] for r in rows) == 5
    assert rows[-1] == {"lo": 0.95, "hi": 1.0, "count": 2, "accuracy": 1.0, "mean_probability": 0.975}


def test_a_trained_model_keeps_domain_terms_and_city_words_whole():
    model = Model.train([Record(**r) for r in tiny_records()], user_words=["澄江街道", "市城管局"], n_jobs=1)
    segmenter = model.pipeline.named_steps["features"].segmenter
    tokens = segmenter.cut("澄江街道家里燃气泄漏了，市城管局说电梯困人不归他们管")
    assert {"澄江街道", "燃气泄漏", "市城管局", "电梯困人"} <= set(tokens)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_stacker_turns_svm_scores_into_probabilities_of_the_right_class(n_classes: int):
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["甲", "乙", "丙"][:n_classes]), 30)
    dense = rng.normal(0.0, 0.3, size=(len(y), 6))
    for j, label in enumerate(sorted(set(y.tolist()))):
        dense[y == label, j] += 2.0  # each class has its own feature
    clf = CalibratedLinearSVC(folds=3).fit(csr_matrix(dense), y)
    proba = clf.predict_proba(csr_matrix(dense))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (clf.classes_[proba.argmax(axis=1)] == y).mean() >= 0.95
    assert np.allclose(clf.oof_proba("stacker").sum(axis=1), 1.0)


def test_the_plain_candidate_is_the_reference_baseline_char_tfidf():
    docs = [("标题", "小区  燃气泄漏了，请处理！"), ("", "公交车 G2 班次太少"), ("", "学校乱收费")] * 2
    ours = TextFeatures(words=False, raw_chars=True).fit_transform(docs).toarray()
    ref = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    expected = ref.fit_transform([f"{title} {text}" for title, text in docs]).toarray()
    assert np.allclose(np.sort(ours, 1), np.sort(expected, 1), atol=1e-5)
    assert CANDIDATES[0].name == "plain" and not CANDIDATES[0].words and not CANDIDATES[0].balanced


def _error_code_records() -> list[Record]:
    # The label is the error code, a single digit: the word features drop single digits, raw characters keep them.
    places = ["东湖", "西山", "南岭", "北城", "中和", "新华", "人民", "解放", "建设", "光明"]
    return [Record(f"{place}小区门禁报警代码{code}请处理", f"故障{code}") for place in places for code in "123"]


def test_training_records_every_candidates_validation_score_and_keeps_the_best():
    model = Model.train([Record(**r) for r in tiny_records()], n_jobs=1)
    selection = model.metadata["selection"]
    scores = {c["name"]: c["macro_f1"] for c in selection["candidates"]}
    assert list(scores) == [c.name for c in CANDIDATES]
    assert scores[selection["chosen"]] == max(scores.values())
    assert model.metadata["pipeline"]["candidate"] == selection["chosen"]
    assert model.evaluate([Record(**r) for r in tiny_records()])["selection"] == selection


def test_a_taxonomy_the_word_features_cannot_see_gets_the_plain_baseline():
    words_only = Candidate("words", words=True, raw_chars=False, balanced=True, decide="svm")
    model = Model.train(_error_code_records(), n_jobs=1, candidates=[CANDIDATES[0], words_only])
    scores = {c["name"]: c["macro_f1"] for c in model.metadata["selection"]["candidates"]}
    assert scores["words"] < 0.6 < scores["plain"]
    assert model.metadata["selection"]["chosen"] == "plain"
    assert model.predict("", "西山小区门禁报警代码2请处理")[0][0] == "故障2"


def test_ties_go_to_the_earlier_candidate():
    trials = [
        Trial(CANDIDATES[i], None, np.zeros((1, 1)), {"name": CANDIDATES[i].name, "macro_f1": f})
        for i, f in enumerate([0.9, 0.95, 0.95, 0.94])
    ]
    assert select(trials).candidate == CANDIDATES[1]


def test_training_can_be_limited_to_one_candidate():
    only = Candidate("words", words=True, raw_chars=False, balanced=True, decide="svm")
    model = Model.train([Record(**r) for r in tiny_records()], n_jobs=1, candidates=[only])
    assert model.metadata["selection"]["chosen"] == "words"
    proba = model.predict_proba([("", "东湖公司拖欠工资半年不发")])
    assert model.labels[int(proba.argmax())] == "劳动和社会保障"


def test_a_model_of_an_older_format_is_refused_with_retrain(tiny_model: Model, tmp_path: Path):
    tiny_model.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["format_version"] = FORMAT_VERSION - 1
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IncompatibleModelError, match="retrain"):
        Model.load(tmp_path / "m")


def test_batches_larger_than_a_chunk_give_the_same_probabilities(tiny_model: Model, monkeypatch: pytest.MonkeyPatch):
    items = [(r["title"], r["text"]) for r in tiny_records()]
    whole = tiny_model.predict_proba(items)
    monkeypatch.setattr("nlp.classifier.PREDICT_CHUNK", 5)
    assert np.allclose(tiny_model.predict_proba(items), whole, atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_svm_fits_in_worker_processes_give_the_weights_of_fits_in_process(n_classes: int):
    # The workers read the matrix from the files SvmPool.share wrote; any slip in that round trip (a part
    # missing, the shape, rows taken from the wrong matrix) changes the weights.
    rng = np.random.default_rng(1)
    y = np.repeat(np.array(["甲", "乙", "丙"][:n_classes]), 40)
    dense = rng.normal(0.0, 0.5, size=(len(y), 8)) * (rng.random((len(y), 8)) < 0.5)
    for j, label in enumerate(sorted(set(y.tolist()))):
        dense[y == label, j] += 1.0
    X = csr_matrix(dense)
    in_process = CalibratedLinearSVC(folds=3, n_jobs=1).fit(X, y)
    workers = CalibratedLinearSVC(folds=3, n_jobs=2).fit(X, y)
    assert np.allclose(in_process.coef_T_, workers.coef_T_)
    assert np.allclose(in_process.oof_scores_, workers.oof_scores_)
    assert np.allclose(in_process.oof_proba("stacker"), workers.oof_proba("stacker"))


def test_calibration_softmax_is_scipys_to_the_last_bit():
    scores = np.random.default_rng(0).normal(size=(500, 7)) * 20
    assert (_softmax_rows(scores) == softmax(scores, axis=1)).all()


def test_one_message_and_a_batch_get_the_same_probabilities(tiny_model):
    items = [("", "小区燃气泄漏了"), ("路灯", "门口路灯坏了好几天"), ("", "")]
    batch = tiny_model.predict_proba(items)
    one_by_one = np.vstack([tiny_model.predict_proba([item]) for item in items])
    assert np.allclose(batch, one_by_one, atol=1e-6)
