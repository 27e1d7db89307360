import itertools

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp import vectorize
from nlp.vectorize import _GOLDEN, _WINDOW, CharNgramTfidf, KeyTable, WordNgramTfidf

DOCS = ["燃气泄漏了请问怎么办", "小区噪音扰民严重", "燃气泄漏", "G2栋 燃气", "噪音扰民", "小区燃气"] * 2 + ["x"]


def _same(a, b) -> bool:
    return np.allclose(np.sort(a.toarray(), 1), np.sort(b.toarray(), 1), atol=1e-5)


def test_char_ngrams_weigh_like_sklearn_tfidf():
    ours = CharNgramTfidf((1, 3), min_df=2, max_df=0.9)
    ref = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, max_df=0.9, lowercase=False)
    assert _same(ours.fit_transform(DOCS), ref.fit_transform(DOCS))
    assert _same(ours.transform(["燃气 噪音", ""]), ref.transform(["燃气 噪音", ""]))


def test_word_ngrams_weigh_like_sklearn_tfidf():
    docs = [list(d) for d in DOCS]
    ours = WordNgramTfidf(min_df=2)
    ref = TfidfVectorizer(
        analyzer=lambda d: d + [f"{a}_{b}" for a, b in itertools.pairwise(d)], sublinear_tf=True, min_df=2
    )
    assert _same(ours.fit_transform(docs), ref.fit_transform(docs))
    assert _same(ours.transform([list("燃气泄漏扰民"), []]), ref.transform([list("燃气泄漏扰民"), []]))


# Lookups walk on one slot a round while many keys are left and in windows for the last few: check both ways.
ONE_SLOT_OR_WINDOWS = pytest.mark.parametrize("window_below", [0, 10**9], ids=["windows", "one slot a round"])


@ONE_SLOT_OR_WINDOWS
def test_key_table_finds_every_key_and_nothing_else(monkeypatch, window_below):
    monkeypatch.setattr(vectorize, "_WINDOW_BELOW", window_below)
    keys = np.unique(np.random.default_rng(0).integers(1, 2**62, 5000, dtype=np.int64)).astype(np.uint64)
    table = KeyTable(keys)
    assert (table.lookup(keys) == np.arange(len(keys))).all()
    assert (table.lookup(np.array([0, 3, 2**63], dtype=np.uint64)) == -1).all()


def _keys_at(table: KeyTable, slot: int, n: int, offset: int = 0) -> np.ndarray:
    """``n`` distinct keys whose first probe is ``slot`` (the hash is a bijection: invert it)."""
    inverse = pow(int(_GOLDEN), -1, 2**64)
    low = 64 - int(table.shift)
    return np.array([((slot << low | (offset + i)) * inverse) % 2**64 for i in range(n)], dtype=np.uint64)


@ONE_SLOT_OR_WINDOWS
def test_key_table_walks_clusters_longer_than_its_probe_window_and_wraps_around(monkeypatch, window_below):
    monkeypatch.setattr(vectorize, "_WINDOW_BELOW", window_below)
    table = KeyTable(np.arange(1, 901, dtype=np.uint64))
    last = int(table.mask)
    crowd = _keys_at(table, last - 2, 3 * _WINDOW)  # one cluster over the end of the table and back to slot 0
    keys = np.concatenate([np.arange(1, 901, dtype=np.uint64), crowd])
    table = KeyTable(keys)
    assert int(table.mask) == last  # same size, so the crowd really shares one first slot
    assert (table.lookup(keys[::-1]) == np.arange(len(keys))[::-1]).all()
    strangers = _keys_at(table, last - 2, 5, offset=10**6)  # absent, so they walk the whole cluster
    assert (table.lookup(np.concatenate([strangers, keys[-1:]])) == [-1] * 5 + [len(keys) - 1]).all()


def test_fitting_gives_the_same_rows_as_transforming_the_training_documents():
    ours = CharNgramTfidf((1, 3), min_df=2, max_df=0.9)
    fitted = ours.fit_transform(DOCS)
    assert np.allclose(fitted.toarray(), ours.transform(DOCS).toarray(), atol=1e-6)


def test_rows_times_weights_is_the_sparse_product_for_one_row_and_for_many():
    vec = CharNgramTfidf((1, 3), min_df=1, max_df=1.0).fit(DOCS)
    weights = np.random.default_rng(1).normal(size=(vec.n_features, 7)).astype(np.float32)
    for docs in (["燃气泄漏了"], [""], ["燃气泄漏了", "", "小区噪音", "没见过的字"]):
        rows = vec.rows(docs)
        assert np.allclose(rows.dot(weights), rows.matrix() @ weights, atol=1e-6)
        assert rows.dot(weights).shape == (len(docs), 7)


def test_one_message_alone_gets_exactly_the_row_it_gets_in_a_batch():
    vec = CharNgramTfidf((1, 3), min_df=1, max_df=1.0).fit(DOCS)
    long_message = "小区燃气泄漏了请问怎么办，噪音扰民严重。" * 40 + "没见过的字"
    for message in (long_message, "燃气", "没见过", ""):
        alone = vec.rows([message]).matrix().toarray()
        in_batch = vec.rows(["小区噪音", message, "燃气泄漏"]).matrix().toarray()[1:2]
        assert np.array_equal(alone, in_batch)
