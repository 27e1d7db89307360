"""Knowledge-base search: which policy answers (知识库) help the agent answer this citizen?

BM25 over two kinds of terms, segmented words and CJK character bigrams: words give precision ("公积金提取"),
bigrams give recall when the citizen's wording is segmented differently from the article's or misspelt.
Titles count twice, because an article's title is its question. Plain numpy/scipy, no service to run.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import pairwise

import numpy as np
from scipy.sparse import csr_matrix

from nlp.segment import Segmenter, default_segmenter, join_segmented

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


def terms(text: str, segmenter: Segmenter | None = None) -> list[str]:
    """Words plus "#"-prefixed character bigrams (prefixed so a two-character word and a bigram stay apart)."""
    seg = segmenter or default_segmenter()
    words = [w.lower() for w in seg.cut(text)]
    joined = join_segmented(text)
    bigrams = ["#" + a + b for run in _CJK_RUN.findall(joined) for a, b in pairwise(run)]
    return words + bigrams


class KnowledgeIndex:
    """BM25 index over (id, title, body) articles; ``search`` returns (id, score) best first."""

    def __init__(
        self,
        articles: Iterable[tuple[int, str, str]],
        *,
        segmenter: Segmenter | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        title_weight: int = 2,
    ) -> None:
        self.segmenter = segmenter or default_segmenter()
        self.k1 = k1
        self.b = b
        self.ids: list[int] = []
        self.vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        lengths: list[int] = []
        for doc_no, (article_id, title, body) in enumerate(articles):
            self.ids.append(int(article_id))
            toks = terms(title or "", self.segmenter) * title_weight + terms(body or "", self.segmenter)
            lengths.append(len(toks))
            for term, count in Counter(toks).items():
                col = self.vocab.setdefault(term, len(self.vocab))
                rows.append(doc_no)
                cols.append(col)
                tfs.append(float(count))
        n_docs = len(self.ids)
        shape = (n_docs, max(len(self.vocab), 1))
        tf = csr_matrix((np.array(tfs), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))), shape=shape)
        df = np.bincount(np.array(cols, dtype=np.int64), minlength=shape[1]).astype(float)
        # BM25 idf, floored at a small positive value so terms in every article still count a little.
        self.idf = np.maximum(np.log((n_docs - df + 0.5) / (df + 0.5) + 1.0), 1e-3)
        avg_len = (sum(lengths) / n_docs) if n_docs else 1.0
        doc_len = np.array(lengths, dtype=float)
        # Precompute each (doc, term) BM25 weight; a query is then one sparse mat-vec.
        tf = tf.tocoo()
        norm = self.k1 * (1 - self.b + self.b * doc_len[tf.row] / max(avg_len, 1e-9))
        weights = tf.data * (self.k1 + 1) / (tf.data + norm) * self.idf[tf.col]
        self._matrix = csr_matrix((weights, (tf.row, tf.col)), shape=shape)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int = 5, *, keep: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """Top ``k`` articles for ``query`` as (id, BM25 score), best first; articles sharing no term are omitted,
        and with ``keep`` those it refuses (an article not in effect today): the top ``k`` of the others."""
        if not self.ids or k <= 0:
            return []
        vocab = self.vocab
        counts = Counter(filter(vocab.__contains__, terms(query, self.segmenter)))
        if not counts:
            return []
        q = np.zeros(self._matrix.shape[1])
        for term, count in counts.items():
            q[vocab[term]] = math.log1p(count)
        scores = self._matrix @ q
        hits: list[tuple[int, float]] = []
        for i in np.argsort(-scores, kind="stable").tolist():
            score = float(scores[i])
            if score <= 0:
                break  # best first: the rest share no term either
            if keep is None or keep(self.ids[i]):
                hits.append((self.ids[i], round(score, 4)))
                if len(hits) == k:
                    break
        return hits
