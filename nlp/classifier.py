"""First-level category classifier: which bureau's domain a citizen's message belongs to.

Training chooses its configuration on the data it is given (``CANDIDATES``, ``fit_candidates``, ``select``):
a city retrains on its own categories, and what cross-validation tuned on the government data (head block,
stop words, domain terms, balanced weights, the stacker) did not carry over to another taxonomy, where the
pipeline fell below the plain baseline (issue #15). So every candidate of a small fixed set is fitted, scored
by macro-F1 on its out-of-fold predictions (raw records when the data mixes forms), and the best one is kept;
the set starts with the plain baseline itself (char 1-3-gram TF-IDF of the raw text + unweighted LinearSVC,
argmax), so a model is never chosen over it unless it validates better. The choice and every candidate's
score go into the metadata and ``evaluate``'s JSON. ``bench/nlp_selection.py`` checks that the choice
generalises by nested cross-validation over seven taxonomies (BENCHMARKS.md).

The candidates' building blocks:

* Word blocks: segment title + text with the city dictionary (rjieba, same dictionary as jieba), drop
  punctuation, single Latin letters/digits (anonymised "A市" -> "市") and common function words; training data
  comes both raw and already segmented with stop words removed, and this normalisation makes both forms give
  the same features. Then char 1-3-grams of the joined words + word unigrams and bigrams + char 1-3-grams of
  the message's first 40 characters at weight 0.7; TF-IDF with sublinear tf. The SVM is class-balanced.
* Raw-character block: char 1-3-grams of the text as written, the plain baseline's features (digits, Latin
  letters and punctuation kept, which the word blocks drop).
* Linear SVM; its out-of-fold scores feed either one temperature (the SVM's argmax decides, probabilities
  calibrated without moving it) or a multinomial logistic regression over all k scores (a k x k stacker) that
  gives both, because dispatch decisions need probabilities that mean what they say (the auto-dispatch gate is
  a probability threshold). The stacker also corrects systematic confusions between neighbouring categories,
  which per-class Platt scaling cannot (CV macro-F1 0.9308 -> 0.9346 on the word blocks).

What was tried and not kept (5-fold CV macro-F1 of the SVM's argmax on the shared raw messages, before the head
block's weight was tuned on the calibrated pipeline, which scored 0.931 with Platt scaling and 0.935 now):
C in 0.3-2 (<= 0.919), logistic regression (0.913), ridge (0.918), NB-SVM (0.918), complement NB (0.876),
modified-Huber SGD (0.910), char 1-4-grams (0.923, slower), min_df=1 (0.919), up-weighting raw rows (0.920),
dropping training rows the model disagrees with (0.912), stop words learnt from the raw/segmented difference
(0.926, no gain), and an RBF SVM on 400 LSA dimensions added to the linear scores (0.927 at ten times the
training time). With the stacker (0.935), not kept either: a one-hidden-layer MLP on chi2-selected features
(0.927), LR averaged in (0.928), stacking per-block SVMs (<= 0.930) or NB / ridge scores beside the SVM's
(<= 0.935), 5-fold out-of-fold scores (0.934), fastText stacked beside the SVM (0.934), self-training on
unlabelled messages (0.934). Linear models on these features level off near 0.935; see
BENCHMARKS.md for the gap to 0.94. In the candidate round: the word blocks alone as a third fit (best on the
government data by 0.003 in nested CV, worse on five of the other six taxonomies, and over the time budget
as a third fit). For training time: the mean of the calibration folds' SVMs as the final model instead of a
fit on all rows (a third less SVM time, 0.004 lower macro-F1 in 5-fold CV). Not yet kept: per-class offsets on
the log-probabilities, fitted for macro-F1 on the chosen candidate's out-of-fold probabilities (coordinate ascent,
grid +-1 in steps of 0.1, 3 rounds, halved) with the temperature refitted after: 0.9338 -> 0.9364 in
bench/nlp_quality.py's folds (better in all 5; 97.3 % right at p >= 0.9), 3-fold gains of 0.001-0.006 on three
other taxonomies, but a grid of +-0.5 gave only 0.9342 and the 4-label taxonomy lost on 2 of 3 folds; the
setting was picked on the test folds. Chosen inside training instead (none, +-0.5 or +-1, halved or not, by a
2-fold split of the out-of-fold rows): 0.9358 (no fold worse), short messages +0.002, segmented rows +0.002,
4 labels -0.001 (3-fold); below 0.94 either way, and bench/nlp_selection.py has not been run on it.

A model is a directory: ``pipeline.joblib`` + ``metadata.json`` (labels, training data hash, library versions,
the selection, validation metrics, auto-dispatch threshold). Loading checks the scikit-learn version *before*
unpickling, because a pickle from another scikit-learn release can load and then predict garbage silently.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import platform
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import scipy
import sklearn
from joblib.externals.loky import get_reusable_executor
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix, hstack
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from nlp.segment import DOMAIN_TERMS, Segmenter
from nlp.vectorize import CharNgramTfidf, Rows, WordNgramTfidf

FORMAT_VERSION = 4  # 2: head block, balanced weights; 3: multinomial stacker; 4: configuration chosen at training
PIPELINE_FILE = "pipeline.joblib"
METADATA_FILE = "metadata.json"
AUTO_DISPATCH_TARGET = 0.97
PREDICT_CHUNK = 256  # messages per vectorisation step in Model.predict_proba
RELIABILITY_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)

# Common function words: removed from both forms so raw text matches text whose stop words were stripped.
STOP_WORDS = frozenset(
    {
        "的",
        "了",
        "是",
        "在",
        "我",
        "我们",
        "和",
        "不",
        "有",
        "都",
        "也",
        "没有",
        "就",
        "为",
        "到",
        "给",
        "要",
        "对",
        "还",
        "与",
        "被",
        "这",
        "等",
        "上",
        "可以",
        "又",
        "去",
        "但",
        "他们",
        "并",
        "吗",
        "能",
        "而",
        "将",
        "向",
        "让",
        "不能",
        "来",
        "这样",
        "把",
        "及",
        "从",
        "就是",
        "多",
        "该",
        "以",
        "一",
        "作为",
        "为什么",
        "本人",
        "什么",
        "这个",
        "有关",
        "自己",
        "由",
        "个",
        "但是",
        "他",
        "这些",
        "于",
        "会",
        "关于",
        "不是",
        "您",
        "如果",
        "还是",
        "可",
        "你",
        "过",
        "按",
        "才",
        "你们",
        "其",
        "因",
        "很",
        "因为",
        "着",
        "们",
        "或",
        "通过",
        "为了",
        "任何",
        "呢",
        "更",
        "只有",
        "还有",
        "而且",
        "谁",
        "怎么",
        "此",
        "这么",
        "用",
        "其他",
        "由于",
        "那",
        "所以",
        "且",
        "如此",
        "吧",
        "为何",
        "如何",
        "甚至",
        "啊",
        "连",
        "可是",
        "那么",
        "她",
        "它",
        "之",
        "啦",
        "嘛",
        "哦",
        "呀",
    }
)
# Tokens the word blocks drop: the stop words and single Latin letters or digits (anonymised "A市" -> "市").
Decide = Literal["svm", "stacker"]  # who turns the SVM scores into the decision (see CalibratedLinearSVC)
_DROP_TOKENS = STOP_WORDS | frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class DataError(ValueError):
    """Training or evaluation data is unusable; ``problems`` lists each problem ("line 12: missing 'label'")."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the data: {shown}{more}")


class IncompatibleModelError(RuntimeError):
    """The model directory was written by an incompatible scikit-learn (or model format): retrain it."""


@dataclass(frozen=True)
class Record:
    text: str
    label: str
    title: str = ""
    form: str | None = None


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
def parse_records(lines: Iterable[str], source: str = "") -> list[Record]:
    """Parse JSONL training records; every bad line is reported (not only the first) in one DataError."""
    records: list[Record] = []
    problems: list[str] = []
    prefix = f"{source}: " if source else ""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{prefix}line {number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{prefix}line {number}: expected a JSON object")
            continue
        text, label, title = obj.get("text"), obj.get("label"), obj.get("title") or ""
        bad = False
        for key, value in (("text", text), ("label", label)):
            if value is None:
                problems.append(f"{prefix}line {number}: missing '{key}'")
                bad = True
            elif not isinstance(value, str) or not value.strip():
                problems.append(f"{prefix}line {number}: '{key}' must be a non-empty string")
                bad = True
        if not isinstance(title, str):
            problems.append(f"{prefix}line {number}: 'title' must be a string")
            bad = True
        if bad:
            continue
        assert isinstance(text, str) and isinstance(label, str)
        form = obj.get("form")
        form = form if isinstance(form, str) else None
        records.append(Record(text=text, label=label.strip(), title=title, form=form))
    if problems:
        raise DataError(problems)
    return records


def load_records(paths: Sequence[str | Path]) -> tuple[list[Record], dict[str, Any]]:
    """Records of all files plus provenance (sha256 over the files' bytes in order, sizes)."""
    digest = hashlib.sha256()
    records: list[Record] = []
    problems: list[str] = []
    total_bytes = 0
    for path in paths:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            problems.append(f"{p}: cannot read ({exc.strerror or exc})")
            continue
        digest.update(data)
        total_bytes += len(data)
        try:
            records.extend(parse_records(data.decode("utf-8").splitlines(), source=str(p)))
        except UnicodeDecodeError:
            problems.append(f"{p}: not UTF-8")
        except DataError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DataError(problems)
    info = {
        "files": [Path(p).name for p in paths],
        "sha256": digest.hexdigest(),
        "bytes": total_bytes,
        "records": len(records),
    }
    return records, info


def check_labels(labels: Sequence[str]) -> None:
    """A classifier needs two labels and two examples of each (one to learn from, one to calibrate on)."""
    counts = Counter(labels)
    if len(counts) < 2:
        raise DataError([f"need at least 2 different labels to train, found {len(counts)}: {sorted(counts)}"])
    single = sorted(label for label, n in counts.items() if n < 2)
    if single:
        raise DataError([f"label {label!r} has only 1 example; need at least 2 per label" for label in single])


# ---------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------
def clean_tokens(tokens: Iterable[str]) -> list[str]:
    drop = _DROP_TOKENS
    return [t for t in tokens if t not in drop]


_WHITESPACE_RUN = re.compile(r"\s\s+")


def plain_text(title: str, text: str) -> str:
    """The text the plain baseline reads: title + text as written, lower-cased, whitespace runs as one space
    (what scikit-learn's ``TfidfVectorizer(analyzer="char")`` does to a document before taking n-grams)."""
    return _WHITESPACE_RUN.sub(" ", f"{title or ''} {text or ''}".lower())


class TextFeatures(TransformerMixin, BaseEstimator):
    """(title, text) pairs -> TF-IDF blocks; which blocks is a training-time choice (see ``CANDIDATES``).

    ``words=True`` gives three blocks over the rjieba words (stop words, punctuation and single letters/digits
    removed, so raw and pre-segmented messages give the same features): char 1-3-grams of the joined words,
    word uni+bigrams, and the head block, the char 1-3-grams of the first ``head_chars`` characters (the
    title, or the opening sentence where the title was merged into the text) weighted ``head_weight``:
    citizens say what the matter is first and then tell the story. On the shared government messages the head
    block lifted 5-fold CV macro-F1 from 0.926 to 0.9308 at weight 0.7 (0.35: 0.926, 0.5: 0.929, 0.85: 0.929,
    1.0: 0.928; 30 characters: 0.930; 80 characters did worse); see BENCHMARKS.md.
    ``raw_chars=True`` adds the plain baseline's block: char 1-3-grams of the text as written (``plain_text``),
    all n-grams kept (min_df=1), no segmentation.
    Segmenting once per message and feeding all word blocks keeps prediction fast (segmentation dominates).
    """

    def __init__(
        self,
        segmenter: Segmenter | None = None,
        *,
        words: bool = True,
        raw_chars: bool = False,
        char_ngram_range: tuple[int, int] = (1, 3),
        min_df: int = 2,
        head_chars: int = 40,
        head_weight: float = 0.7,
    ) -> None:
        self.segmenter = segmenter
        self.words = words
        self.raw_chars = raw_chars
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.head_chars = head_chars
        self.head_weight = head_weight

    def tokens(self, items: Iterable[tuple[str, str]]) -> list[list[str]]:
        if self.segmenter is None:
            self.segmenter = Segmenter()
        cut = self.segmenter.cut
        return [cut(f"{title or ''} {text or ''}", drop=_DROP_TOKENS) for title, text in items]

    def fit(self, X: Sequence[tuple[str, str]], y: Any = None) -> TextFeatures:
        self.fit_transform(X, y)
        return self

    def fit_transform(
        self,
        X: Sequence[tuple[str, str]],
        y: Any = None,
        raw_block: tuple[CharNgramTfidf, csr_matrix] | None = None,
        **fit_params: Any,
    ) -> csr_matrix:
        """Fit the blocks and return the training matrix. ``raw_block``: the raw-character vectoriser already
        fitted on these same ``X`` and its matrix (``fit_raw_block``), so candidates sharing it featurise once."""
        if not (self.words or self.raw_chars):
            raise ValueError("TextFeatures needs words=True or raw_chars=True")
        small = len(X) < 20
        min_df, max_df = (1, 1.0) if small else (self.min_df, 0.9)
        blocks: list[csr_matrix] = []
        if self.words:
            tokens = self.tokens(X)
            self.char_ = CharNgramTfidf(self.char_ngram_range, min_df=min_df, max_df=max_df)
            self.word_ = WordNgramTfidf(min_df=min_df)
            self.head_ = CharNgramTfidf(self.char_ngram_range, min_df=min_df, max_df=max_df)
            joined = ["".join(t) for t in tokens]
            blocks += [
                self.char_.fit_transform(joined),
                self.word_.fit_transform(tokens),
                self.head_.fit_transform([j[: self.head_chars] for j in joined]) * np.float32(self.head_weight),
            ]
        if self.raw_chars:
            if raw_block is None:
                raw_block = fit_raw_block(X, self.char_ngram_range)
            self.raw_, matrix = raw_block
            blocks.append(matrix)
        return hstack(blocks, format="csr", dtype=np.float32)

    def blocks(self, X: Sequence[tuple[str, str]]) -> list[csr_matrix]:
        """The feature blocks unstacked, as scipy matrices."""
        return [block.matrix() for block in self.rows(X)]

    def rows(self, X: Sequence[tuple[str, str]], tokens: Sequence[list[str]] | None = None) -> list[Rows]:
        """The feature blocks unstacked, as ``Rows`` (prediction multiplies each by its slice of the weights).

        ``tokens``: the words of each item as ``self.tokens(X)`` gives them, for a caller that has segmented
        the messages already; else they are segmented here."""
        out: list[Rows] = []
        if self.words:
            if tokens is None:
                tokens = self.tokens(X)
            joined = ["".join(t) for t in tokens]
            head = self.head_.rows([j[: self.head_chars] for j in joined]).scaled(self.head_weight)
            out += [self.char_.rows(joined), self.word_.rows(tokens), head]
        if self.raw_chars:
            out.append(self.raw_.rows([plain_text(title, text) for title, text in X]))
        return out

    def transform(self, X: Sequence[tuple[str, str]]) -> csr_matrix:
        return hstack(self.blocks(X), format="csr", dtype=np.float32)


def fit_raw_block(
    X: Sequence[tuple[str, str]], char_ngram_range: tuple[int, int] = (1, 3)
) -> tuple[CharNgramTfidf, csr_matrix]:
    """The raw-character block (all n-grams kept) fitted on ``X``: the vectoriser and its training matrix."""
    raw = CharNgramTfidf(char_ngram_range, min_df=1, max_df=1.0)
    return raw, raw.fit_transform([plain_text(title, text) for title, text in X])


def _fit_svc(X: csr_matrix, y: np.ndarray, C: float, balanced: bool) -> LinearSVC:
    # Balanced class weights: macro-F1 weighs a small category (交通运输, 7 % of the data) like a big one, and
    # unweighted the SVM gives small categories up to the big ones (CV macro-F1 0.924 -> 0.926 with them on the
    # word features; the plain baseline is unweighted).
    # A fixed seed for liblinear's shuffling: without it two trainings on the same data differed in the
    # fourth decimal of the stacker's validation score and in the auto-dispatch threshold.
    return LinearSVC(C=C, class_weight="balanced" if balanced else None, random_state=0).fit(X, y)


_MATRIX_PARTS = ("data", "indices", "indptr")


def _open_matrix(matrix: str | csr_matrix) -> csr_matrix:
    """A matrix given as itself or as the file prefix ``SvmPool.share`` wrote (memory-mapped, not read)."""
    if isinstance(matrix, csr_matrix):
        return matrix
    data, indices, indptr = (np.load(f"{matrix}.{part}.npy", mmap_mode="r") for part in _MATRIX_PARTS)
    shape = tuple(int(n) for n in np.load(f"{matrix}.shape.npy"))
    return csr_matrix((data, indices, indptr), shape=shape)


def _fit_rows(
    matrix: str | csr_matrix, rows: np.ndarray, y: np.ndarray, C: float, balanced: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One SVM fit on some rows of a shared matrix (runs in a worker process): its weights and intercepts."""
    model = _fit_svc(_open_matrix(matrix)[rows], y, C, balanced)
    return np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_, dtype=np.float64)


def _shared_memory_dir() -> str | None:
    """``/dev/shm`` when it has room (a container's default is 64 MB; the words+raw matrix alone is ~90 MB, and
    joblib asks for 2 GB too), else None: the system's temporary directory."""
    shm = Path("/dev/shm")
    try:
        return str(shm) if shm.is_dir() and shutil.disk_usage(shm).free >= 2 << 30 else None
    except OSError:
        return None


class SvmPool:
    """The SVM fits of a training, in worker processes, so they run while the next candidate is featurised.

    liblinear holds the GIL, so threads would not help (BENCHMARKS.md §3). Each feature matrix goes to the
    workers once, as ``.npy`` files in a temporary directory (on ``/dev/shm`` where it has room) that every
    worker memory-maps, instead of being pickled for each fit. ``workers <= 1`` (tests, the CLI on one core)
    fits in this process, at submission. Used as a context manager: the files go when it closes.
    """

    def __init__(self, workers: int | None) -> None:
        self.workers = workers or 1
        self._dir: str | None = None
        self._shared = 0

    def __enter__(self) -> SvmPool:
        if self.workers > 1:
            self._dir = tempfile.mkdtemp(prefix="hotline-svm-", dir=_shared_memory_dir())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def share(self, X: csr_matrix) -> str | csr_matrix:
        """What to hand to ``submit`` for ``X``: the matrix itself in process, else the prefix of its files."""
        if self._dir is None:
            return X
        prefix = str(Path(self._dir) / f"m{self._shared}")
        self._shared += 1
        for part in _MATRIX_PARTS:
            np.save(f"{prefix}.{part}.npy", getattr(X, part))
        np.save(f"{prefix}.shape.npy", np.asarray(X.shape, dtype=np.int64))
        return prefix

    def submit(
        self, matrix: str | csr_matrix, rows: np.ndarray, y: np.ndarray, C: float, balanced: bool
    ) -> Future[tuple[np.ndarray, np.ndarray]]:
        if self._dir is None:
            done: Future[tuple[np.ndarray, np.ndarray]] = Future()
            done.set_result(_fit_rows(matrix, rows, y, C, balanced))
            return done
        executor = get_reusable_executor(max_workers=self.workers)
        return executor.submit(_fit_rows, matrix, rows, y, C, balanced)


_Weights = tuple[np.ndarray, np.ndarray]  # a LinearSVC's coef_ and intercept_


def _both_sides(coef: np.ndarray, intercept: np.ndarray, n_classes: int) -> _Weights:
    """A binary LinearSVC has one score (positive = second class): give each class its own column."""
    if n_classes == 2:
        return np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return coef, intercept


def _stacker(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression over the k SVM scores -> (k x k weights, k intercepts)."""
    # C=1 (the default L2 strength): in CV, 0.1 lost 0.005 macro-F1, 3 and 10 were no better.
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(scores, y)
    coef = np.asarray(lr.coef_, dtype=np.float64)
    intercept = np.asarray(lr.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # binary LR has one logit for the second class; softmax over (0, z) is the same sigmoid
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return np.ascontiguousarray(coef.T), intercept


def _temperature(scores: np.ndarray, y_index: np.ndarray) -> float:
    """The scale a minimising the log loss of softmax(a * scores): calibrates without moving the argmax."""

    def loss(log_a: float) -> float:
        logp = log_softmax(scores * np.exp(log_a), axis=1)
        return float(-logp[np.arange(len(y_index)), y_index].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-5.0, 5.0), method="bounded").x))


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    """``scipy.special.softmax(z, axis=1)``, the same arithmetic without its array-API dispatch (~30 us a
    call, paid by every single message predicted)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class CalibratedLinearSVC(ClassifierMixin, BaseEstimator):
    """Linear SVM whose out-of-fold decision values are turned into probabilities, in one of two ways.

    ``decide="stacker"``: a multinomial logistic regression over all classes' scores (a k x k stacker) gives
    the probabilities and the decision. Per-class Platt scaling maps each class's score on its own, so it can
    rescale but never learn that a high 城乡建设 score next to a fair 商贸旅游 score usually means 商贸旅游;
    the stacker sees the whole score vector. On the shared government messages it moved 5-fold CV macro-F1 from
    0.9308 to 0.9346 (better in 12 of 15 folds over three outer seeds).
    ``decide="svm"``: the SVM's argmax decides (as in the plain baseline) and one temperature, fitted on the
    out-of-fold scores, turns the scores into probabilities without changing which label wins.
    Both calibrators are fitted; training picks one by validation (``Model.train``), ``decide`` applies it.
    Either way a prediction is one sparse mat-mul plus a k x k product (CalibratedClassifierCV costs ~6 ms
    per call). The out-of-fold scores are kept (``oof_scores_``), and the stacker's probabilities for them
    are cross-validated too (``oof_stacker_proba_``), so training gets honest validation figures without a
    second fit.
    """

    def __init__(
        self,
        C: float = 1.0,
        folds: int = 3,
        n_jobs: int | None = None,
        random_state: int = 0,
        balanced: bool = True,
        decide: Decide = "stacker",
    ) -> None:
        self.C = C
        self.folds = folds
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.balanced = balanced
        self.decide = decide

    def fit(self, X: csr_matrix, y: Sequence[str] | np.ndarray) -> CalibratedLinearSVC:
        with SvmPool(self.n_jobs) as pool:
            return self.finish(X, self.start(X, y, pool))

    def start(self, X: csr_matrix, y: Sequence[str] | np.ndarray, pool: SvmPool) -> list[Future[_Weights]]:
        """Submit the SVM fits to ``pool``: the final fit on all rows first (the longest), then one per
        calibration fold; ``finish`` collects them. (The mean of the fold fits instead of a final fit would save
        a third of the SVM time, but lost 0.004 macro-F1 in 5-fold CV on the government data.)"""
        self._y = np.asarray(y)
        folds = max(2, min(self.folds, int(min(Counter(self._y.tolist()).values()))))
        self._splits = list(StratifiedKFold(folds, shuffle=True, random_state=self.random_state).split(X, self._y))
        matrix = pool.share(X)
        jobs = [np.arange(X.shape[0])] + [tr for tr, _ in self._splits]
        return [pool.submit(matrix, rows, self._y[rows], self.C, self.balanced) for rows in jobs]

    def finish(self, X: csr_matrix, fits: Sequence[Future[_Weights]]) -> CalibratedLinearSVC:
        """Out-of-fold scores from the fold fits, both calibrators, and the final weights."""
        y_arr, splits = self._y, self._splits
        del self._y, self._splits
        self.classes_ = np.unique(y_arr)
        k = len(self.classes_)
        y_index = np.searchsorted(self.classes_, y_arr)
        final, *folds = (_both_sides(*fit.result(), k) for fit in fits)
        oof = np.zeros((X.shape[0], k))
        for (_, te), (coef, intercept) in zip(splits, folds, strict=True):
            oof[te] = X[te] @ coef.T + intercept
        self.oof_scores_ = oof
        # One BLAS thread: on k x k problems a second thread only spins (4x the CPU, slower on a busy machine).
        with threadpool_limits(limits=1, user_api="blas"):
            self.calib_W_, self.calib_b_ = _stacker(oof, y_arr)
            self.temperature_ = _temperature(oof, y_index)
            # The stacker's own out-of-fold probabilities: fitted on the other folds' scores, like at prediction.
            self.oof_stacker_proba_ = np.zeros_like(oof)
            for tr, te in splits:
                W, b = _stacker(oof[tr], y_arr[tr])
                self.oof_stacker_proba_[te] = softmax(oof[te] @ W + b, axis=1)
        coef_svm, intercept_svm = final
        self.coef_T_ = np.ascontiguousarray(coef_svm.T, dtype=np.float32)
        self.intercept_ = intercept_svm.astype(np.float32)
        return self

    def oof_proba(self, decide: Decide | None = None) -> np.ndarray:
        """Out-of-fold probabilities under ``decide`` (default: this estimator's)."""
        if (decide or self.decide) == "stacker":
            return self.oof_stacker_proba_
        return np.asarray(softmax(self.oof_scores_ * self.temperature_, axis=1))

    def _calibrate(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=np.float64)
        if self.decide == "stacker":
            return _softmax_rows(d @ self.calib_W_ + self.calib_b_)
        return _softmax_rows(d * self.temperature_)

    def decision_function(self, X: csr_matrix) -> np.ndarray:
        return np.asarray(X @ self.coef_T_) + self.intercept_

    def predict_proba(self, X: csr_matrix) -> np.ndarray:
        return self._calibrate(self.decision_function(X))

    def predict(self, X: csr_matrix) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])


@dataclass(frozen=True)
class Candidate:
    """One configuration training may choose: which feature blocks, class weights, and who decides."""

    name: str
    words: bool  # the rjieba word blocks (joined-word chars, word 1-2-grams, head block)
    raw_chars: bool  # char 1-3-grams of the text as written
    balanced: bool
    decide: Decide  # "svm" (argmax of the SVM, temperature probabilities) or "stacker"

    @property
    def fit_key(self) -> tuple[bool, bool, bool]:
        """Candidates with the same key share one fit (they differ only in how the scores are read)."""
        return (self.words, self.raw_chars, self.balanced)

    def describe(self) -> str:
        blocks = []
        if self.words:
            blocks.append("rjieba words: char 1-3 of the joined words + word 1-2 + head (40 chars, x0.7)")
        if self.raw_chars:
            blocks.append("char 1-3 of the raw text")
        weights = "balanced" if self.balanced else "unweighted"
        decision = "multinomial logistic stacker" if self.decide == "stacker" else "SVM argmax, temperature"
        return f"{' | '.join(blocks)} TF-IDF (sublinear); LinearSVC(C=1, {weights}); {decision}"


# The fixed set training chooses from, simplest first (ties go to the earlier one). Two fits: the plain
# baseline, and the rjieba word blocks with the raw-character block beside them; each read two ways. Why not
# the word blocks alone (the previous pipeline): in nested CV over seven taxonomies (BENCHMARKS.md) adding the
# raw characters won on five, by up to 0.013 macro-F1 (titles only, the seed corpus's 16 categories), and lost
# 0.003 on the government data; a third fit would not fit the training-time budget.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("plain", words=False, raw_chars=True, balanced=False, decide="svm"),
    Candidate("plain+stacker", words=False, raw_chars=True, balanced=False, decide="stacker"),
    Candidate("words+raw", words=True, raw_chars=True, balanced=True, decide="svm"),
    Candidate("words+raw+stacker", words=True, raw_chars=True, balanced=True, decide="stacker"),
)


def build_pipeline(
    segmenter: Segmenter | None = None,
    *,
    candidate: Candidate | None = None,
    C: float = 1.0,
    n_jobs: int | None = None,
    calibration_folds: int = 3,
) -> Pipeline:
    """Unfitted pipeline for ``candidate`` (default: the last, richest candidate)."""
    c = candidate or CANDIDATES[-1]
    return Pipeline(
        [
            ("features", TextFeatures(segmenter=segmenter, words=c.words, raw_chars=c.raw_chars)),
            (
                "clf",
                CalibratedLinearSVC(C=C, folds=calibration_folds, n_jobs=n_jobs, balanced=c.balanced, decide=c.decide),
            ),
        ]
    )


# ---------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------
def reliability_table(
    top_prob: np.ndarray, correct: np.ndarray, bins: Sequence[float] = RELIABILITY_BINS
) -> list[dict[str, Any]]:
    """Rows {lo, hi, count, accuracy, mean_probability} per probability bin (last bin includes 1.0)."""
    rows = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bins)):
        last = i == len(bins) - 2
        mask = (top_prob >= lo) & ((top_prob <= hi) if last else (top_prob < hi))
        n = int(mask.sum())
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "count": n,
                "accuracy": round(float(correct[mask].mean()), 4) if n else None,
                "mean_probability": round(float(top_prob[mask].mean()), 4) if n else None,
            }
        )
    return rows


def choose_threshold(
    top_prob: np.ndarray, correct: np.ndarray, target: float = AUTO_DISPATCH_TARGET, min_count: int = 20
) -> tuple[float, float, float | None]:
    """Lowest probability threshold whose tickets (top probability >= threshold) are >= ``target`` correct.

    Needs at least ``min_count`` validation tickets above the threshold so one lucky ticket cannot set it.
    Returns (threshold, share of tickets at/above it, their accuracy); threshold 1.0+ (never) when unreachable.
    """
    order = np.argsort(-top_prob, kind="stable")
    probs = top_prob[order]
    hits = np.cumsum(correct[order].astype(float))
    counts = np.arange(1, len(probs) + 1)
    precision = hits / counts
    best: tuple[float, float, float | None] = (1.01, 0.0, None)
    for i in range(len(probs)):
        # Only cut between distinct probabilities: everything tied with probs[i] is included.
        if i + 1 < len(probs) and probs[i + 1] == probs[i]:
            continue
        if counts[i] >= min_count and precision[i] >= target:
            best = (float(probs[i]), float(counts[i] / len(probs)), float(precision[i]))
    return best


def _round(x: float) -> float:
    return round(float(x), 4)


def classification_metrics(y_true: Any, y_pred: Any, labels: Sequence[str]) -> dict[str, Any]:
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), zero_division=0)
    return {
        "macro_f1": _round(f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0)),
        "accuracy": _round(accuracy_score(y_true, y_pred)),
        "per_label": {
            label: {"precision": _round(p[i]), "recall": _round(r[i]), "f1": _round(f[i]), "support": int(s[i])}
            for i, label in enumerate(labels)
        },
    }


@dataclass
class Trial:
    """A candidate fitted on the training data, with its out-of-fold probabilities and validation score."""

    candidate: Candidate
    pipeline: Pipeline  # shared by the candidates with the same fit_key; set clf.decide before predicting
    oof_proba: np.ndarray
    score: dict[str, Any]


def fit_candidates(
    items: Sequence[tuple[str, str]],
    y: np.ndarray,
    pool: np.ndarray,
    candidates: Sequence[Candidate] = CANDIDATES,
    *,
    segmenter: Segmenter | None = None,
    n_jobs: int | None = 2,
) -> list[Trial]:
    """Fit each candidate (one fit per ``fit_key``) and score its out-of-fold predictions on ``pool``.

    Each fit's SVMs go to worker processes (``n_jobs`` of them; ``SvmPool``) as soon as its features are ready,
    so the next fit is featurised here while they run; the raw-character block is featurised once for all fits
    that read it. A fit's ``seconds`` run from the start of its featurisation to its last SVM, so they overlap.
    """
    started: dict[tuple[bool, bool, bool], tuple[Pipeline, csr_matrix, list[Future[_Weights]], float]] = {}
    fitted: dict[tuple[bool, bool, bool], tuple[Pipeline, float]] = {}
    raw_block: tuple[CharNgramTfidf, csr_matrix] | None = None
    with SvmPool(n_jobs) as svm:
        for candidate in candidates:
            if candidate.fit_key in started:
                continue
            t0 = time.perf_counter()
            pipe = build_pipeline(segmenter, candidate=candidate, n_jobs=n_jobs)
            if candidate.raw_chars:
                raw_block = raw_block or fit_raw_block(items)
            X = pipe.named_steps["features"].fit_transform(items, raw_block=raw_block if candidate.raw_chars else None)
            started[candidate.fit_key] = (pipe, X, pipe.named_steps["clf"].start(X, y, svm), t0)
        for key, (pipe, X, fits, t0) in started.items():
            pipe.named_steps["clf"].finish(X, fits)
            fitted[key] = (pipe, time.perf_counter() - t0)
    trials: list[Trial] = []
    first_read: set[tuple[bool, bool, bool]] = set()
    for candidate in candidates:
        pipe, seconds = fitted[candidate.fit_key]
        proba = pipe.named_steps["clf"].oof_proba(candidate.decide)
        pred = pipe.classes_[proba.argmax(1)]
        score = {
            "name": candidate.name,
            "description": candidate.describe(),
            "macro_f1": _round(f1_score(y[pool], pred[pool], average="macro")),
            "accuracy": _round(accuracy_score(y[pool], pred[pool])),
            "seconds": 0.0 if candidate.fit_key in first_read else round(seconds, 1),
        }
        first_read.add(candidate.fit_key)
        trials.append(Trial(candidate, pipe, proba, score))
    return trials


def select(trials: Sequence[Trial]) -> Trial:
    """The trial with the best validation macro-F1; ties go to the earlier one (the plain baseline is first)."""
    return max(trials, key=lambda t: float(t.score["macro_f1"]))  # max keeps the first of equals


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import jieba

    versions = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "jieba": jieba.__version__,
        "joblib": joblib.__version__,
    }
    try:
        from importlib.metadata import version

        versions["rjieba"] = version("rjieba")
    except Exception:  # pragma: no cover - optional backend
        pass
    return versions


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Model:
    """A fitted classifier plus its metadata; ``predict`` gives calibrated top-k (label, probability)."""

    def __init__(self, pipeline: Pipeline, metadata: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.metadata = metadata
        self.labels: list[str] = [str(c) for c in pipeline.classes_]

    @property
    def threshold(self) -> float:
        return float(self.metadata.get("auto_dispatch", {}).get("threshold", 1.01))

    @property
    def version(self) -> str:
        return str(self.metadata.get("model_version", "unknown"))

    # -- training -----------------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        records: Sequence[Record],
        *,
        data_info: dict[str, Any] | None = None,
        user_words: Iterable[str] = (),
        target: float = AUTO_DISPATCH_TARGET,
        n_jobs: int | None = 2,
        candidates: Sequence[Candidate] = CANDIDATES,
    ) -> Model:
        """Fit every candidate configuration, keep the one with the best validation macro-F1.

        Validation = out-of-fold predictions (3 folds) over the records marked ``form == "raw"`` when the data
        mixes forms, because production messages are raw, else over all records. Ties go to the earlier
        candidate (the plain baseline comes first). The auto-dispatch threshold is chosen on the winner's
        out-of-fold probabilities; the final weights are fitted on all records, so the threshold (chosen on
        models trained on 2/3 of the data) is slightly conservative, the safe side.
        """
        records = list(records)
        if not records:
            raise DataError(["no training records"])
        if not candidates:
            raise ValueError("no candidate configurations to train")
        labels_all = [r.label for r in records]
        check_labels(labels_all)
        started = time.perf_counter()
        # Domain terms (燃气泄漏, 电梯困人 …) always stay whole, whatever city dictionary comes with the data.
        segmenter = Segmenter([*DOMAIN_TERMS, *user_words])
        items = [(r.title, r.text) for r in records]
        y = np.array(labels_all)
        raw = np.array([r.form == "raw" for r in records])
        pool = raw if raw.any() and not raw.all() else np.ones(len(records), dtype=bool)

        trials = fit_candidates(items, y, pool, candidates, segmenter=segmenter, n_jobs=n_jobs)
        best = select(trials)
        chosen, proba = best.candidate, best.oof_proba
        final = best.pipeline
        final.named_steps["clf"].decide = chosen.decide
        classes = final.classes_
        pred = classes[proba.argmax(1)][pool]
        top = proba.max(1)[pool]
        correct = pred == y[pool]
        folds = final.named_steps["clf"].folds
        validation: dict[str, Any] = {
            "n": int(pool.sum()),
            "method": f"out-of-fold ({folds} folds) over "
            + ("raw records" if pool.sum() < len(records) else "all records"),
            **classification_metrics(y[pool], pred, [str(c) for c in classes]),
            "reliability": reliability_table(top, correct),
        }
        threshold, share, acc = choose_threshold(top, correct, target)
        auto = {
            "target": target,
            "threshold": round(threshold, 4),
            "share": round(share, 4),
            "accuracy_at_threshold": None if acc is None else round(acc, 4),
        }
        created = datetime.now(UTC)
        metadata = {
            "format_version": FORMAT_VERSION,
            "model_version": created.strftime("%Y%m%dT%H%M%SZ"),
            "created": created.isoformat(timespec="seconds"),
            "labels": [str(c) for c in classes],
            "label_counts": dict(sorted(Counter(labels_all).items())),
            "training_data": data_info or {"records": len(records)},
            "libraries": _versions(),
            "pipeline": {
                "candidate": chosen.name,
                "description": chosen.describe(),
                "user_words": len(segmenter.words),
            },
            "selection": {
                "chosen": chosen.name,
                "method": f"macro-F1 of out-of-fold predictions ({folds} folds) over "
                + ("raw records" if pool.sum() < len(records) else "all records")
                + "; ties go to the earlier candidate",
                "candidates": [t.score for t in trials],
            },
            "validation": validation,
            "auto_dispatch": auto,
            "training_seconds": round(time.perf_counter() - started, 1),
        }
        return cls(final, metadata)

    # -- prediction ---------------------------------------------------------------------------------------
    def predict_proba(self, items: Sequence[tuple[str, str]]) -> np.ndarray:
        """Calibrated probabilities, columns in ``self.labels`` order.

        Fast path for our own pipeline: each feature block is multiplied by its slice of the weights, which
        avoids stacking sparse matrices and sklearn's per-call checks (~0.5 ms of a ~1.5 ms single prediction).
        Large batches go in chunks of ``PREDICT_CHUNK`` messages: a whole evaluation set at once builds
        temporaries of ~25 MB per array (3 n-gram keys per character), which the allocator takes fresh from
        the kernel and hands back after each step, so the batch paid a page fault per 4 KB touched; chunks
        keep the temporaries small and reused (see BENCHMARKS.md, speed).
        """
        items = list(items)
        features = self.pipeline.named_steps.get("features")
        clf = self.pipeline.named_steps.get("clf")
        if not (isinstance(features, TextFeatures) and isinstance(clf, CalibratedLinearSVC)):
            return np.asarray(self.pipeline.predict_proba(items))
        d = np.empty((len(items), len(clf.classes_)), dtype=np.float32)
        for lo in range(0, len(items), PREDICT_CHUNK):
            chunk = d[lo : lo + PREDICT_CHUNK]
            chunk[:] = clf.intercept_
            start = 0
            for block in features.rows(items[lo : lo + PREDICT_CHUNK]):
                chunk += block.dot(clf.coef_T_[start : start + block.n_cols])
                start += block.n_cols
        return clf._calibrate(d)

    def predict_many(self, items: Sequence[tuple[str, str]], k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-``k`` (label, calibrated probability) for each (title, text), best first."""
        if not items:
            return []
        proba = self.predict_proba(items)
        k = max(1, min(k, proba.shape[1]))
        top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(self.labels[j], round(float(row[j]), 4)) for j in cols] for row, cols in zip(proba, top, strict=True)]

    def predict(self, title: str, text: str, k: int = 3) -> list[tuple[str, float]]:
        return self.predict_many([(title, text)], k=k)[0]

    # -- evaluation ---------------------------------------------------------------------------------------
    def evaluate(self, records: Sequence[Record]) -> dict[str, Any]:
        """Metrics on labelled records: macro-F1, accuracy, per label, speed, reliability, auto-dispatch."""
        if not records:
            raise DataError(["no evaluation records"])
        items = [(r.title, r.text) for r in records]
        t0 = time.perf_counter()
        proba = self.predict_proba(items)
        seconds = time.perf_counter() - t0
        y = np.array([r.label for r in records])
        pred = np.array(self.labels)[proba.argmax(1)]
        top = proba.max(1)
        correct = pred == y
        # Macro averages run over the labels of the evaluation data: a category the model knows but the data
        # never uses would otherwise add an F1 of 0 (a 16-category model on 7-label data looked twice as bad).
        # Predictions of such a category still count, as misses of the true label.
        labels = sorted(set(y.tolist()))
        above = top >= self.threshold
        high = top >= 0.9
        return {
            "model_version": self.version,
            "selection": self.metadata.get("selection"),
            "n": len(records),
            **classification_metrics(y, pred, labels),
            "msgs_per_s": round(len(records) / seconds, 1) if seconds > 0 else None,
            "reliability": reliability_table(top, correct),
            "confident_0_9": {
                "count": int(high.sum()),
                "accuracy": _round(correct[high].mean()) if high.any() else None,
            },
            "auto_dispatch": {
                "threshold": self.threshold,
                "share": _round(above.mean()),
                "accuracy": _round(correct[above].mean()) if above.any() else None,
            },
            "unknown_labels": sorted(set(y.tolist()) - set(self.labels)),
        }

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        pipe_path = out / PIPELINE_FILE
        joblib.dump(self.pipeline, pipe_path, compress=3)
        self.metadata["pipeline_sha256"] = _file_sha256(pipe_path)
        (out / METADATA_FILE).write_text(
            json.dumps(self.metadata, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        return out

    @classmethod
    def read_metadata(cls, directory: str | Path) -> dict[str, Any]:
        path = Path(directory) / METADATA_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory}: not a model directory (no {METADATA_FILE})")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    @classmethod
    def load(cls, directory: str | Path) -> Model:
        """Load a saved model (never retrains); refuses other scikit-learn major.minor versions and formats."""
        meta = cls.read_metadata(directory)
        if meta.get("format_version") != FORMAT_VERSION:
            raise IncompatibleModelError(
                f"{directory}: model format {meta.get('format_version')!r}, this code reads format "
                f"{FORMAT_VERSION}; retrain the model (hotline nlp train)"
            )
        built = str(meta.get("libraries", {}).get("scikit-learn", "unknown"))
        if _major_minor(built) != _major_minor(sklearn.__version__):
            raise IncompatibleModelError(
                f"{directory}: model was built with scikit-learn {built}, this environment has "
                f"{sklearn.__version__}; retrain the model (hotline nlp train) with this environment"
            )
        pipe_path = Path(directory) / PIPELINE_FILE
        expected = meta.get("pipeline_sha256")
        if expected and _file_sha256(pipe_path) != expected:
            raise IncompatibleModelError(f"{pipe_path}: file does not match the sha256 in {METADATA_FILE}")
        pipeline = joblib.load(pipe_path)
        return cls(pipeline, meta)


def train_from_files(paths: Sequence[str | Path], **kwargs: Any) -> Model:
    records, info = load_records(paths)
    return Model.train(records, data_info=info, **kwargs)
