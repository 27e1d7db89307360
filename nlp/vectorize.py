"""Fast TF-IDF vectorisers for the classifier: vectorised character n-grams and dictionary word n-grams.

Why not sklearn's TfidfVectorizer: its character analyzer builds every n-gram as a Python string and looks it
up one by one (~0.7 ms for a 400-character message), which alone caps prediction below 1,500 msgs/s on one
core. Here a text becomes an array of code points and each 1-3-gram an integer key (21 bits per character),
so a whole batch is encoded and looked up with numpy (``searchsorted``) in one go. The weighting is the same
as TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm="l2"), tested against it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix

_BITS = 21  # Unicode code points fit in 21 bits; three of them fit in a uint64 key.


class Rows(NamedTuple):
    """TF-IDF rows as the three CSR arrays, before scipy wraps them (``matrix``).

    Prediction multiplies them by the weights itself (``dot``): a scipy matrix costs ~30 us to build and
    ~15 us to multiply in checks alone, five of each for every single message predicted, which is as much as
    the arithmetic of a short message.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_cols: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def matrix(self) -> csr_matrix:
        return csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_cols))

    def scaled(self, factor: float) -> Rows:
        return self._replace(data=self.data * np.float32(factor))

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """``self.matrix() @ weights`` for a dense (n_cols x k) ``weights``. One row (a single message) is one
        gather and one product in numpy; several go through scipy, whose one pass beats numpy's three there."""
        if self.n_rows == 1:
            return (self.data @ weights[self.indices])[None, :]
        return np.asarray(self.matrix() @ weights)


def _empty_rows(n_rows: int, n_cols: int) -> Rows:
    return Rows(
        np.zeros(n_rows + 1, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32), n_cols
    )


def _idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    return (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)


def _weight(doc_ids: np.ndarray, feat_ids: np.ndarray, n_docs: int, n_feats: int, idf: np.ndarray) -> Rows:
    """(document, feature) occurrences -> TF-IDF rows (see ``_tfidf``).

    The occurrences are counted by sorting one integer per occurrence: int32 where document x feature fits (a
    prediction chunk: sorting half the bytes took about half the time), int64 for large training batches. The
    sort-and-mark is ``np.unique(return_counts=True)`` without its extra copies and checks.
    """
    dtype = np.int32 if n_docs * n_feats < 2**31 else np.int64
    pairs = doc_ids.astype(dtype) * n_feats + feat_ids.astype(dtype)  # a Python int keeps the array's dtype
    pairs.sort()
    edges = np.empty(len(pairs) + 1, dtype=bool)
    edges[0] = edges[-1] = True
    np.not_equal(pairs[1:], pairs[:-1], out=edges[1:-1])
    starts = np.flatnonzero(edges)
    pairs = pairs[starts[:-1]]
    rows = pairs // n_feats
    return _tfidf(rows, pairs - rows * n_feats, np.diff(starts), n_docs, n_feats, idf)


def _tfidf(
    rows: np.ndarray, indices: np.ndarray, counts: np.ndarray, n_docs: int, n_feats: int, idf: np.ndarray
) -> Rows:
    """Counts of distinct (row, feature) pairs sorted by row then feature -> (1 + log tf) * idf -> rows
    scaled to unit L2 norm (CSR built directly, no COO round trip)."""
    # In place where it can be: a single message pays for the number of numpy calls more than for their work.
    indices = indices.astype(np.int32)
    data = np.log(counts.astype(np.float32))
    data += np.float32(1.0)
    data *= idf[indices]  # float32 throughout
    squares = data.astype(np.float64)
    squares *= squares
    # Every row with an entry has a norm > 0 (idf >= 1); the empty rows' scale is never read.
    inv = (1.0 / np.maximum(np.sqrt(np.bincount(rows, weights=squares, minlength=n_docs)), 1e-12)).astype(np.float32)
    data *= inv[rows]
    indptr = np.zeros(n_docs + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n_docs), out=indptr[1:])
    return Rows(indptr, indices, data, n_feats)


_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


_WINDOW = 8  # slots read at once for the keys the first probe did not settle (KeyTable.lookup) ...
_WINDOW_BELOW = 256  # ... once fewer than this many are left


class KeyTable:
    """Open-addressing hash table uint64 key -> position, with vectorised lookups.

    ``np.searchsorted`` over ~500k keys costs ~19 random memory reads per query; linear probing in a table at
    most half full costs ~1.5, which makes the char n-gram lookup ~8x faster. Positions are int32 (half the
    memory the lookups walk) unless there are 2**31 keys; tables pickled with int64 positions work the same.
    """

    def __init__(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        bits = max(4, int(np.ceil(np.log2(max(len(keys), 1) * 2 + 1))))
        self.shift = np.uint64(64 - bits)
        self.mask = np.uint64((1 << bits) - 1)
        self.keys = np.full(1 << bits, _EMPTY, dtype=np.uint64)
        self.values = np.full(1 << bits, -1, dtype=np.int32 if len(keys) < 2**31 else np.int64)
        pending = np.arange(len(keys))
        slots = self._hash(keys)
        while pending.size:
            # Insert the first of each group of keys that want the same free slot; the others probe on.
            free = self.keys[slots[pending]] == _EMPTY
            cand = pending[free]
            _, first = np.unique(slots[cand], return_index=True)
            chosen = cand[first]
            self.keys[slots[chosen]] = keys[chosen]
            self.values[slots[chosen]] = chosen
            done = np.zeros(len(keys), dtype=bool)
            done[chosen] = True
            pending = pending[~done[pending]]
            slots[pending] = (slots[pending] + np.uint64(1)) & self.mask

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (keys * _GOLDEN) >> self.shift

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Positions of ``keys`` in the original key array, -1 where absent."""
        keys = np.asarray(keys, dtype=np.uint64)
        slots = self._hash(keys)
        # First probe for every key at once (most keys end here), then walk on for the few that collided.
        stored = self.keys[slots]
        found = stored == keys
        out = np.full(len(keys), -1, dtype=np.int64)
        hit = np.flatnonzero(found)
        out[hit] = self.values[slots[hit]]
        pending = np.flatnonzero(~found & (stored != _EMPTY))
        # Many keys still walking (a batch): one slot a round, a window would read 8 slots for ~1.5 needed.
        while pending.size > _WINDOW_BELOW:
            slots_p = (slots[pending] + np.uint64(1)) & self.mask
            slots[pending] = slots_p
            stored = self.keys[slots_p]
            found = stored == keys[pending]
            out[pending[found]] = self.values[slots_p[found]]
            pending = pending[~found & (stored != _EMPTY)]
        if pending.size:
            self._probe_on(keys[pending], slots[pending], pending, out)
        return out

    def _probe_on(self, want: np.ndarray, start: np.ndarray, pending: np.ndarray, out: np.ndarray) -> None:
        """Linear probing from ``start + 1`` for the few keys ``want`` (at ``pending`` in ``out``), ``_WINDOW``
        slots at a time: a key stops at its first slot that holds it or is empty, as one slot at a time would.
        One slot at a time took a numpy round per slot of the longest cluster met (up to ~40 in the raw block):
        ~30 rounds of small calls for every single message predicted, more than the probing itself."""
        step = np.arange(1, _WINDOW + 1, dtype=np.uint64)
        while pending.size:
            window = (start[:, None] + step) & self.mask
            stored = self.keys[window]
            match = stored == want[:, None]
            stop = match | (stored == _EMPTY)
            first = stop.argmax(axis=1)
            rows = np.arange(len(pending))
            settled = stop[rows, first]
            got = settled & match[rows, first]
            out[pending[got]] = self.values[window[rows[got], first[got]]]
            more = ~settled
            want, start, pending = want[more], start[more] + np.uint64(_WINDOW), pending[more]


class CharNgramTfidf:
    """Character n-gram TF-IDF over strings, n in [lo, hi] (hi <= 3)."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), min_df: int = 2, max_df: float = 0.9) -> None:
        if not 1 <= ngram_range[0] <= ngram_range[1] <= 3:
            raise ValueError("char n-grams must be within 1..3")
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df

    def _keys(self, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(doc index, n-gram key) for every n-gram of every document."""
        lo, hi = self.ngram_range
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        codes = np.frombuffer("".join(docs).replace("\0", " ").encode("utf-32-le"), dtype=np.uint32)
        codes = codes.astype(np.uint64)
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        keys_all: list[np.ndarray] = []
        docs_all: list[np.ndarray] = []
        for n in range(lo, hi + 1):
            if len(codes) < n:
                continue
            m = len(codes) - n + 1
            key = codes[:m].copy()
            for j in range(1, n):
                key = (key << np.uint64(_BITS)) | codes[j : j + m]
            # An n-gram is valid when all its characters belong to the same document. Keys of different n
            # never collide because code points are >= 1 (NUL is replaced): an n-gram key is >= 2**(21*(n-1)).
            same = doc_of[:m] == doc_of[n - 1 : n - 1 + m]
            keys_all.append(key[same])
            docs_all.append(doc_of[:m][same])
        if not keys_all:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
        return np.concatenate(docs_all), np.concatenate(keys_all)

    def fit_transform(self, docs: Sequence[str]) -> csr_matrix:
        doc_ids, keys = self._keys(docs)
        n_docs = len(docs)
        # Number the distinct n-grams, count distinct (document, n-gram) pairs: document frequencies and the
        # training matrix come from the same two sorts (no hash lookups for the training documents).
        uniq, inverse = np.unique(keys, return_inverse=True)
        n_uniq = max(len(uniq), 1)
        pairs, counts = np.unique(doc_ids * n_uniq + inverse.reshape(-1), return_counts=True)
        rows, feat = np.divmod(pairs, n_uniq)
        df = np.bincount(feat, minlength=len(uniq))
        keep = (df >= self.min_df) & (df <= self.max_df * n_docs)
        self.keys_ = uniq[keep]
        self.idf_ = _idf(df[keep], n_docs)
        self.table_ = KeyTable(self.keys_)
        n_feats = len(self.keys_)
        if n_feats == 0:
            return csr_matrix((n_docs, 1), dtype=np.float32)
        position = np.cumsum(keep) - 1
        sel = keep[feat]
        return _tfidf(rows[sel], position[feat[sel]], counts[sel], n_docs, n_feats, self.idf_).matrix()

    def fit(self, docs: Sequence[str]) -> CharNgramTfidf:
        self.fit_transform(docs)
        return self

    def transform(self, docs: Sequence[str]) -> csr_matrix:
        return self.rows(docs).matrix()

    def rows(self, docs: Sequence[str]) -> Rows:
        """``transform`` as ``Rows``."""
        doc_ids, keys = self._keys(docs)
        n_feats = len(self.keys_)
        if n_feats == 0 or len(keys) == 0:
            return _empty_rows(len(docs), max(n_feats, 1))
        if len(docs) == 1:
            # One message (the agent's intake, a channel message): each distinct n-gram looked up once. A long
            # message repeats most of its n-grams (~8,000 keys, ~3,000 distinct at 2,800 characters), and the
            # lookups' random reads were its largest cost. The same rows as ``_weight`` gives, entry for entry.
            distinct, counts = np.unique(keys, return_counts=True)
            pos = self.table_.lookup(distinct)
            hit = pos >= 0
            pos, counts = pos[hit], counts[hit]
            order = np.argsort(pos, kind="stable")
            return _tfidf(np.zeros(len(pos), dtype=np.int64), pos[order], counts[order], 1, n_feats, self.idf_)
        pos = self.table_.lookup(keys)
        hit = pos >= 0
        return _weight(doc_ids[hit], pos[hit], len(docs), n_feats, self.idf_)

    @property
    def n_features(self) -> int:
        return len(self.keys_)


class WordNgramTfidf:
    """Word unigram + bigram TF-IDF over token lists.

    Features [0, U) are unigrams, [U, U+B) bigrams. A bigram seen in >= min_df documents has both words seen
    in >= min_df documents, so bigrams are looked up as integer pairs of known unigram ids (no string joins).
    """

    def __init__(self, min_df: int = 2, bigrams: bool = True) -> None:
        self.min_df = min_df
        self.bigrams = bigrams

    def _ids(self, docs: Sequence[list[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        lengths = [len(t) for t in docs]
        # map() over the flattened tokens keeps the per-token dictionary lookup in C (no Python frame a token).
        flat = map(vocab.get, itertools.chain.from_iterable(docs), itertools.repeat(-1))
        ids = np.fromiter(flat, dtype=np.int64, count=sum(lengths))
        doc_of = np.repeat(np.arange(len(docs)), lengths)
        return ids, doc_of

    def _pairs(self, ids: np.ndarray, doc_of: np.ndarray, n_uni: int) -> tuple[np.ndarray, np.ndarray]:
        if len(ids) < 2:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        a, b = ids[:-1], ids[1:]
        ok = (a >= 0) & (b >= 0) & (doc_of[:-1] == doc_of[1:])
        keys = a[ok].astype(np.uint64) * np.uint64(n_uni) + b[ok].astype(np.uint64)
        return keys, doc_of[:-1][ok]

    def fit_transform(self, docs: Sequence[list[str]]) -> csr_matrix:
        df: Counter[str] = Counter()
        for tokens in docs:
            df.update(set(tokens))
        vocab = sorted(g for g, n in df.items() if n >= self.min_df)
        self.vocabulary_ = {g: i for i, g in enumerate(vocab)}
        n_uni = len(vocab)
        uni_df = np.array([df[g] for g in vocab], dtype=np.float64)
        self.bigram_keys_ = np.zeros(0, dtype=np.uint64)
        bi_df = np.zeros(0, dtype=np.float64)
        if self.bigrams and n_uni:
            ids, doc_of = self._ids(docs, self.vocabulary_)
            keys, kdoc = self._pairs(ids, doc_of, n_uni)
            order = np.lexsort((keys, kdoc))
            ks, ds = keys[order], kdoc[order]
            first = np.ones(len(ks), dtype=bool)
            first[1:] = (ks[1:] != ks[:-1]) | (ds[1:] != ds[:-1])
            uniq, counts = np.unique(ks[first], return_counts=True)
            keep = counts >= self.min_df
            self.bigram_keys_ = uniq[keep]
            bi_df = counts[keep].astype(np.float64)
        self.table_ = KeyTable(self.bigram_keys_)
        self.idf_ = _idf(np.concatenate([uni_df, bi_df]), len(docs))
        return self.transform(docs)

    def fit(self, docs: Sequence[list[str]]) -> WordNgramTfidf:
        self.fit_transform(docs)
        return self

    def transform(self, docs: Sequence[list[str]]) -> csr_matrix:
        return self.rows(docs).matrix()

    def rows(self, docs: Sequence[list[str]]) -> Rows:
        """``transform`` as ``Rows``."""
        n_uni = len(self.vocabulary_)
        n_feats = max(len(self.idf_), 1)
        ids, doc_of = self._ids(docs, self.vocabulary_)
        known = ids >= 0
        feats = [ids[known]]
        owners = [doc_of[known]]
        if self.bigrams and len(self.bigram_keys_):
            keys, kdoc = self._pairs(ids, doc_of, n_uni)
            pos = self.table_.lookup(keys)
            hit = pos >= 0
            feats.append(pos[hit] + n_uni)
            owners.append(kdoc[hit])
        idf = self.idf_ if len(self.idf_) else np.ones(1, dtype=np.float32)
        return _weight(np.concatenate(owners), np.concatenate(feats), len(docs), n_feats, idf)
