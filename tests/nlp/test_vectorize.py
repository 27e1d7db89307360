import itertools

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp.vectorize import CharNgramTfidf, KeyTable, WordNgramTfidf

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


def test_key_table_finds_every_key_and_nothing_else():
    keys = np.unique(np.random.default_rng(0).integers(1, 2**62, 5000, dtype=np.int64)).astype(np.uint64)
    table = KeyTable(keys)
    assert (table.lookup(keys) == np.arange(len(keys))).all()
    assert (table.lookup(np.array([0, 3, 2**63], dtype=np.uint64)) == -1).all()


def test_fitting_gives_the_same_rows_as_transforming_the_training_documents():
    ours = CharNgramTfidf((1, 3), min_df=2, max_df=0.9)
    fitted = ours.fit_transform(DOCS)
    assert np.allclose(fitted.toarray(), ours.transform(DOCS).toarray(), atol=1e-6)
