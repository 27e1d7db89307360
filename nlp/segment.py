"""Chinese word segmentation with jieba's dictionary, plus the city's own words.

Why rjieba by default: it is the Rust port of jieba (jieba-rs) with the same dictionary file and the same
``add_word`` semantics, and it segments ~25x faster than pure-Python jieba on hotline messages (see
``bench/nlp_speed.py``; pure jieba manages ~570 msgs/s of ~420 chars on one core, far below the classifier's
2,000 msgs/s budget). Pure jieba stays available (``backend="jieba"``) because it is the named dependency and the
reference behaviour; both read the same dictionary format, so city dictionaries work with either.

Why whitespace is removed before cutting: training data arrives in two forms, raw messages and messages already
segmented into space-separated tokens. A segmented message must give the same tokens as its raw form, otherwise
the classifier learns two vocabularies. Spaces between CJK characters carry no meaning in Chinese, so we drop
them and cut the joined text again; spaces between two Latin/digit runs are kept as one space ("G2 320").
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
import unicodedata
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any, Literal

Backend = Literal["rjieba", "jieba"]

# Whitespace next to a CJK character (or fullwidth punctuation) carries no information: remove it (``_is_cjk``).
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
# A token is "content" when it has at least one letter, digit or CJK character (drops punctuation, spaces).
_CONTENT = re.compile(rf"[0-9A-Za-z{_CJK}]")
_PUNCT_ONLY = re.compile(r"^[\W_]+$")

# Terms that must stay one word for the segmenter (classifier features, duplicate search, knowledge search).
DOMAIN_TERMS: tuple[str, ...] = (
    "燃气泄漏",
    "煤气泄漏",
    "天然气泄漏",
    "煤气味",
    "燃气味",
    "电梯困人",
    "电梯故障",
    "停水",
    "停电",
    "停气",
    "爆管",
    "水管爆裂",
    "噪音扰民",
    "占道经营",
    "违章建筑",
    "违建",
    "拖欠工资",
    "欠薪",
    "物业费",
    "公积金",
    "医保",
    "社保",
    "养老保险",
    "低保",
    "廉租房",
    "公租房",
    "垃圾清运",
    "油烟扰民",
    "渣土车",
    "共享单车",
    "路灯不亮",
    "井盖",
    "12345",
)



# The compatibility characters Chinese messages are full of, with what NFKC makes of them (fullwidth ，？！：（）；．
# and the ellipsis; 2,300 of the 2,538 non-normalised messages of the shared data need nothing else). Replacing them
# first lets most messages skip ``unicodedata.normalize``, which costs ~0.2 us a character (BENCHMARKS.md §3).
_COMMON_NFKC = tuple(
    (ch, unicodedata.normalize("NFKC", ch)) for ch in "\uff0c\uff1f\uff01\uff1a\uff09\uff08\uff1b\u2026\uff0e\u3000"
)


def _nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, faster on Chinese text.

    Exact: each replaced character becomes its own NFKC decomposition, made of starters only, so the replaced
    text has the same decomposition as the original and therefore the same NFKC; when it is already normalised,
    that is the text itself."""
    if unicodedata.is_normalized("NFKC", text):
        return text
    for ch, normal in _COMMON_NFKC:
        if ch in text:
            text = text.replace(ch, normal)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def _is_cjk(ch: str) -> bool:
    """``ch`` is in ``_CJK`` (a whitespace run next to it is dropped)."""
    return (
        "\u4e00" <= ch <= "\u9fff"
        or "\u3000" <= ch <= "\u303f"
        or "\u3400" <= ch <= "\u4dbf"
        or "\uf900" <= ch <= "\ufaff"
        or "\uff00" <= ch <= "\uffef"
    )


def join_segmented(text: str) -> str:
    """Undo space-segmentation: "燃气 泄漏 了" -> "燃气泄漏了"; "G2 320" keeps its single space.

    Also applies NFKC so fullwidth digits/letters (Ａ３区) match their halfwidth forms, as citizens type both.
    Remembers its last 1,024 answers: one message is joined by the classifier, the rules, the duplicate and the
    knowledge search in turn, and NFKC of a 400-character message costs more than the lookup. Whitespace around
    the text never reaches the answer, so it is stripped before the lookup: the classifier's "title text" of a
    message without a title and the duplicate search's "text" share one answer.
    Whitespace runs are found by ``str.split()`` (the same whitespace as the regular expressions' ``\\s``) rather
    than by a look-behind pattern tried at every character: a raw message has a run or two, so this is a few
    microseconds where the patterns took ~50.
    """
    return _join_segmented(text.strip())


@functools.lru_cache(maxsize=1024)
def _join_segmented(text: str) -> str:
    pieces = _nfkc(text).split()
    if len(pieces) <= 1:
        return pieces[0] if pieces else ""
    out = [pieces[0]]
    for before, after in itertools.pairwise(pieces):
        if not (_is_cjk(before[-1]) or _is_cjk(after[0])):
            out.append(" ")
        out.append(after)
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _is_content(token: str) -> bool:
    # Remembered: ``cut`` asks only for the tokens that are not ``isalnum`` (punctuation, "G2-3", "A座"), a
    # few hundred distinct ones in the shared data, ~37 a message, each two regular expressions otherwise.
    if token.isalnum():  # fast path: CJK words, Latin words and numbers
        return True
    return bool(_CONTENT.search(token)) and not _PUNCT_ONLY.match(token)


class Segmenter:
    """Segment Chinese text into words; city words (places, units, 燃气泄漏 ...) stay whole.

    ``cut`` returns content tokens only (no whitespace, no punctuation), because every consumer here (the
    classifier, duplicate search, knowledge search) wants words, and dropping punctuation makes raw and
    pre-segmented text (which had punctuation removed) give the same tokens.

    Instances pickle by their settings and user words, not by the native dictionary, so a fitted pipeline that
    holds a Segmenter stays small and rebuilds the same dictionary on load.
    """

    def __init__(self, words: Iterable[str] = (), *, backend: Backend = "rjieba", hmm: bool = True) -> None:
        self.backend: Backend = backend
        self.hmm = hmm
        self._words: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._impl: Any = None
        self._build()
        self.add_words(words)

    # -- construction -------------------------------------------------------------------------------------
    def _build(self) -> None:
        if self.backend == "rjieba":
            try:
                import rjieba
            except ImportError:  # pragma: no cover - rjieba is a declared dependency
                self.backend = "jieba"
            else:
                self._impl = rjieba.Jieba()
                for word in self._words:
                    self._impl.add_word(word, None, None)
                return
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._impl = jieba.Tokenizer()
        for word in self._words:
            self._impl.add_word(word)

    def add_words(self, words: Iterable[str]) -> int:
        """Add city words so they are never split; returns how many were new. Blank words are ignored."""
        added = 0
        with self._lock:
            for raw in words:
                word = join_segmented(raw or "")
                if not word or word in self._seen:
                    continue
                self._seen.add(word)
                self._words.append(word)
                if self.backend == "rjieba":
                    self._impl.add_word(word, None, None)
                else:
                    self._impl.add_word(word)
                added += 1
        return added

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self._words)

    # -- cutting ------------------------------------------------------------------------------------------
    def cut(self, text: str, drop: AbstractSet[str] = frozenset()) -> list[str]:
        """Words of ``text`` (raw or space-segmented), punctuation, whitespace and the words in ``drop`` removed.

        Filtering runs on every token of every message (~250 a message), so it is one pass with the common case
        inline: a word made of letters, digits or CJK characters (``str.isalnum``) is content without a call.
        (Remembering each token's fate in a dictionary was no faster: a lookup hashes the new token string
        rjieba returns, as ``t not in drop`` does.)
        """
        joined = join_segmented(text)
        if not joined:
            return []
        tokens = self._impl.cut(joined, self.hmm) if self.backend == "rjieba" else self._impl.lcut(joined, HMM=self.hmm)
        return [t for t in tokens if (t.isalnum() or _is_content(t)) and t not in drop]

    def cut_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.cut(t) for t in texts]

    # -- pickling -----------------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"backend": self.backend, "hmm": self.hmm, "words": list(self._words)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.backend = state["backend"]
        self.hmm = state["hmm"]
        self._words = list(state["words"])
        self._seen = set(self._words)
        self._lock = threading.Lock()
        self._impl = None
        self._build()

    def __repr__(self) -> str:
        return f"Segmenter(backend={self.backend!r}, hmm={self.hmm}, words={len(self._words)})"


_default: Segmenter | None = None
_default_lock = threading.Lock()


def default_segmenter() -> Segmenter:
    """Process-wide Segmenter without city words (building one costs ~0.25 s, so share it)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Segmenter()
        return _default
