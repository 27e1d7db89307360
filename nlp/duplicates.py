"""Near-duplicate search among recent open tickets: the same incident reported again (并案) and hot spots.

Same incident = similar wording + same place + close in time. Similarity is cosine over TF-IDF word vectors
(segmented words, so place and unit names from the city dictionary count as single distinctive terms).

Why this layout: the index must answer in milliseconds with 100,000 open tickets in a small process. Each
ticket keeps only its ``max_terms`` heaviest terms (the distinctive ones; stop-like words weigh little anyway),
postings are compact ``array`` buffers (slot, weight) per term, and a query is a handful of numpy scatter-adds
over the postings of its terms. Terms found in more than ``max_df`` of the live tickets are skipped: they cost
time and say nothing about which incident this is. Removal is a tombstone; postings are compacted when a third
of the slots are dead.

Document frequencies count each ticket's kept terms. IDF is taken from the live index when a ticket is added,
so weights drift slowly as the mix of tickets changes; for duplicate detection among recent tickets that is
what we want (a term that suddenly appears in many tickets is a hot topic and weighs less for telling incidents apart).
``add_many`` (a rebuild at start) first counts the batch's document frequencies, so the first tickets of a batch
are not weighted by an almost empty index.

Places: given the area hierarchy (``places``: code -> parent code), a place matches itself, its ancestors and its
descendants (a report naming only the district can be the same incident as one naming the street); without it,
places match only themselves. Hot spots (``hot_spots``) cluster the tickets of a time window: candidate pairs come
from one sparse matrix product over that window's tickets only (in row blocks, so memory stays bounded), and
clusters are merged strongest link first, only while their places stay on one branch of the hierarchy — two
streets of one district never end up in one hot spot through a ticket that names only the district.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter

import numpy as np
from scipy.sparse import csr_matrix

from nlp.segment import Segmenter, default_segmenter

#: everyday words that say nothing about what a hot spot is (time of day, "at home", "already" …): citizens use
#: them in every complaint, so they would be tags of any cluster (issue 13: 家里, 时候, 晚上 shown as tags)
TAG_FILLERS = frozenset({
    "家里", "我家", "时候", "晚上", "早上", "上午", "下午", "中午", "白天", "夜里", "半夜", "凌晨", "今天", "昨天",
    "前天", "最近", "现在", "已经", "一直", "每天", "经常", "还是", "这个", "那个", "这里", "那里", "这边", "那边",
    "我们", "他们", "你们", "自己", "大家", "一下", "好几天", "几天", "多次", "反映", "希望", "请问", "麻烦", "谢谢",
    "情况", "问题", "附近", "周边", "非常", "特别", "严重", "没有", "可以", "怎么", "什么", "为什么", "能不能",
})

TicketId = Hashable


@dataclass(frozen=True)
class Duplicate:
    ticket_id: TicketId
    score: float


@dataclass
class HotSpot:
    """A cluster of similar requests in one area within the window: a candidate for a hot-spot alert.

    ``place_code`` is the most specific place of the cluster; every member's place is that place or one of its
    ancestors (or unknown, when ``require_place`` is False). ``top_terms``: the words (two characters or more)
    weighing most across the members.
    """

    place_code: str | None
    ticket_ids: list[TicketId]
    first_at: datetime
    last_at: datetime
    top_terms: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.ticket_ids)


def _same_place(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


_BLOCK = 1024  # rows per block of the hot-spot similarity product


class DuplicateIndex:
    """Open tickets of the last ``window``; ``query`` finds the same incident, ``hot_spots`` finds clusters.

    Place rule: two tickets with unrelated known places are never the same incident; a ticket without a place
    can match any place (the citizen may simply not have named it). With ``places`` (code -> parent code, or
    ``set_places`` later) a place is related to its ancestors and descendants, so a community matches its own
    street; without it only to itself. ``same_place`` replaces the rule for ``query`` altogether.
    """

    def __init__(
        self,
        window: timedelta = timedelta(days=7),
        *,
        segmenter: Segmenter | None = None,
        max_terms: int = 80,
        max_df: float = 0.05,
        same_place: Callable[[str | None, str | None], bool] | None = None,
        places: Mapping[str, str | None] | None = None,
    ) -> None:
        self.window = window
        self.segmenter = segmenter or default_segmenter()
        self.max_terms = max_terms
        self.max_df = max_df
        self.same_place: Callable[[str | None, str | None], bool] = same_place or self.related
        self._parents: dict[str, str | None] = dict(places or {})
        self._ancestors: dict[str, tuple[str, ...]] = {}
        self._lock = threading.RLock()
        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []
        self._df: list[int] = []
        self._post_slots: list[array] = []
        self._post_weights: list[array] = []
        self._slot_of: dict[TicketId, int] = {}
        self._ids: list[TicketId | None] = []
        self._places: list[str | None] = []
        self._at = array("d")
        self._dt: list[datetime] = []
        self._alive = array("b")
        self._vectors: list[tuple[array, array] | None] = []
        self._dead = 0

    # -- places -------------------------------------------------------------------------------------------
    def set_places(self, places: Mapping[str, str | None]) -> None:
        """Replace the area hierarchy (code -> parent code), e.g. after an admin edited the directory."""
        with self._lock:
            self._parents = dict(places)
            self._ancestors = {}

    def ancestors(self, code: str) -> tuple[str, ...]:
        """Parent, grandparent, ... of ``code`` in the known hierarchy (stops at unknown codes and cycles)."""
        found = self._ancestors.get(code)
        if found is None:
            chain: list[str] = []
            seen = {code}
            parent = self._parents.get(code)
            while parent is not None and parent not in seen:
                chain.append(parent)
                seen.add(parent)
                parent = self._parents.get(parent)
            found = self._ancestors[code] = tuple(chain)
        return found

    def related(self, a: str | None, b: str | None) -> bool:
        """Unknown matches anything; else one place is the other or one of its ancestors."""
        if a is None or b is None or a == b:
            return True
        return a in self.ancestors(b) or b in self.ancestors(a)

    def _narrower(self, a: str | None, b: str | None) -> tuple[bool, str | None]:
        """(compatible, the more specific place) for two cluster places; no hierarchy known = equality only."""
        if a is None or a == b:
            return True, b
        if b is None:
            return True, a
        if a in self.ancestors(b):
            return True, b
        if b in self.ancestors(a):
            return True, a
        return False, None

    # -- bookkeeping --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._slot_of

    def terms(self, text: str) -> Counter[str]:
        """The terms ``add`` and ``query`` weigh for ``text`` (its words, lower-cased, single Latin letters and digits
        left out). A caller that both looks a text up and then indexes it segments it once: pass them as ``terms``."""
        return Counter(w.lower() for w in self.segmenter.cut(text) if len(w) >= 2 or not w.isascii())

    def _vector(
        self, counts: Counter[str], *, create: bool, batch_df: Counter[str] | None = None, batch_n: int = 0
    ) -> tuple[list[int], np.ndarray]:
        """Sublinear-tf x idf weights of the heaviest ``max_terms`` terms, L2-normalised.

        ``batch_df``/``batch_n``: document frequencies and size of a batch being added, counted as if already in.
        """
        n = len(self._slot_of) + batch_n
        vocab, known_df, max_terms = self._vocab, self._df, self.max_terms
        # the same few (tf, df) pairs come back for most terms: each weight is computed once per pair
        weight_of: dict[tuple[int, int], float] = {}
        log = math.log
        items: list[tuple[str, float]] = []
        for term, tf in counts.items():
            tid = vocab.get(term)
            if tid is None and not create:
                continue
            df = (known_df[tid] if tid is not None else 0) + (batch_df[term] if batch_df is not None else 0)
            w = weight_of.get((tf, df))
            if w is None:
                w = weight_of[tf, df] = (1.0 + log(tf)) * (log((n + 1) / (df + 1)) + 1.0)
            items.append((term, w))
        items.sort(key=itemgetter(1), reverse=True)  # stable: equal weights keep the text's order
        del items[max_terms:]
        if not items:
            return [], np.zeros(0, dtype=np.float32)
        weights = np.array([w for _, w in items], dtype=np.float32)
        weights /= float(np.linalg.norm(weights)) or 1.0
        if create:
            return [self._term_id(term) for term, _ in items], weights
        return [vocab[term] for term, _ in items], weights

    def _term_id(self, term: str) -> int:
        """The id of a kept term, created on first use (only kept terms enter the vocabulary: a long text's
        dropped words would otherwise stay in it, unused, for the life of the process)."""
        tid = self._vocab.get(term)
        if tid is None:
            tid = len(self._terms)
            self._vocab[term] = tid
            self._terms.append(term)
            self._df.append(0)
            self._post_slots.append(array("i"))
            self._post_weights.append(array("f"))
        return tid

    # -- mutation -----------------------------------------------------------------------------------------
    def add(self, ticket_id: TicketId, text: str, place_code: str | None, at: datetime, *,
            terms: Counter[str] | None = None) -> None:
        """Index an open ticket (re-adding an id replaces it); ``terms``: ``self.terms(text)``, if known already."""
        counts = terms if terms is not None else self.terms(text)
        with self._lock:
            if ticket_id in self._slot_of:
                self.remove(ticket_id)
            term_ids, weights = self._vector(counts, create=True)
            self._insert(ticket_id, term_ids, weights, place_code, at)

    def entry(self, ticket_id: TicketId) -> tuple[list[str], list[float]] | None:
        """What the index holds for a ticket: its kept terms and their weights (None if not indexed). Another
        process's index takes it as it is (``add_entry``) instead of segmenting and weighing the text again."""
        with self._lock:
            slot = self._slot_of.get(ticket_id)
            vec = self._vectors[slot] if slot is not None else None
            if vec is None:
                return None
            return [self._terms[tid] for tid in vec[0]], vec[1].tolist()

    def add_entry(self, ticket_id: TicketId, terms: Sequence[str], weights: Sequence[float], place_code: str | None,
                  at: datetime) -> None:
        """Index a ticket by the entry another index gave it (``entry``): its weights are that index's at the time
        it added the ticket, as this index's own would have been at that time (re-adding an id replaces it)."""
        if len(terms) != len(weights) or len(terms) > self.max_terms or len(set(terms)) != len(terms):
            raise ValueError(f"an index entry needs at most {self.max_terms} distinct terms, each with a weight")
        values = np.asarray(weights, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ValueError("an index entry's weights must be finite numbers")
        with self._lock:
            if ticket_id in self._slot_of:
                self.remove(ticket_id)
            self._insert(ticket_id, [self._term_id(str(term)) for term in terms], values, place_code, at)

    def _insert(
        self, ticket_id: TicketId, term_ids: list[int], weights: np.ndarray, place_code: str | None, at: datetime
    ) -> None:
        slot = len(self._ids)
        self._ids.append(ticket_id)
        self._places.append(place_code)
        self._at.append(at.timestamp())
        self._dt.append(at)
        self._alive.append(1)
        self._vectors.append((array("i", term_ids), array("f", weights.tolist())))
        self._slot_of[ticket_id] = slot
        for tid, w in zip(term_ids, weights.tolist(), strict=True):
            self._df[tid] += 1
            self._post_slots[tid].append(slot)
            self._post_weights[tid].append(w)

    def remove(self, ticket_id: TicketId) -> bool:
        """Forget a ticket (closed, merged or deleted). Returns False if it was not indexed."""
        with self._lock:
            slot = self._slot_of.pop(ticket_id, None)
            if slot is None:
                return False
            self._alive[slot] = 0
            self._ids[slot] = None
            vec = self._vectors[slot]
            if vec is not None:
                for tid in vec[0]:
                    self._df[tid] -= 1
            self._vectors[slot] = None
            self._dead += 1
            if self._dead > 1000 and self._dead * 3 > len(self._ids):
                self._compact()
            return True

    def expire(self, now: datetime) -> int:
        """Remove tickets older than ``now - window``; returns how many."""
        limit = (now - self.window).timestamp()
        with self._lock:
            old = [tid for tid, slot in self._slot_of.items() if self._at[slot] < limit]
            for tid in old:
                self.remove(tid)
            return len(old)

    def _compact(self) -> None:
        """Rebuild postings without dead slots, and the vocabulary without the terms only removed tickets used (so
        it follows the tickets indexed, not every word seen since the process started); recompute frequencies."""
        alive_slots = [s for s in range(len(self._ids)) if self._alive[s]]
        remap = {old: new for new, old in enumerate(alive_slots)}
        self._ids = [self._ids[s] for s in alive_slots]
        self._places = [self._places[s] for s in alive_slots]
        self._at = array("d", (self._at[s] for s in alive_slots))
        self._dt = [self._dt[s] for s in alive_slots]
        self._alive = array("b", [1] * len(alive_slots))
        kept = [vec for vec in (self._vectors[s] for s in alive_slots) if vec is not None]
        assert len(kept) == len(alive_slots)  # a live slot always has its vector
        used = sorted({tid for term_ids, _ in kept for tid in term_ids})
        new_tid = {old: new for new, old in enumerate(used)}
        self._terms = [self._terms[tid] for tid in used]
        self._vocab = {term: tid for tid, term in enumerate(self._terms)}
        self._vectors = [(array("i", (new_tid[tid] for tid in term_ids)), weights) for term_ids, weights in kept]
        self._slot_of = {tid: remap[s] for tid, s in self._slot_of.items()}
        self._df = [0] * len(self._terms)
        self._post_slots = [array("i") for _ in self._terms]
        self._post_weights = [array("f") for _ in self._terms]
        for slot, vec in enumerate(self._vectors):
            assert vec is not None
            for tid, w in zip(vec[0], vec[1], strict=True):
                self._df[tid] += 1
                self._post_slots[tid].append(slot)
                self._post_weights[tid].append(w)
        self._dead = 0

    # -- search -------------------------------------------------------------------------------------------
    def _scores(self, term_ids: list[int], weights: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(self._ids), dtype=np.float32)
        n_live = max(len(self._slot_of), 1)
        cap = max(self.max_df * n_live, 50)
        slots: list[np.ndarray] = []
        posted: list[np.ndarray] = []
        kept = np.zeros(len(term_ids), dtype=bool)
        for position, tid in enumerate(term_ids):
            posting = self._post_slots[tid]
            if not posting or len(posting) > cap:
                continue
            kept[position] = True
            slots.append(np.frombuffer(posting, dtype=np.int32))
            posted.append(np.frombuffer(self._post_weights[tid], dtype=np.float32))
        if slots:
            # one unbuffered scatter-add over every posting, in the query's term order: each ticket's score sums
            # the same float32 products in the same order as one ``+=`` per term did, at a fraction of the calls
            query = np.repeat(weights[kept], [len(p) for p in posted])
            np.add.at(scores, np.concatenate(slots), query * np.concatenate(posted))
        return scores

    def query(
        self,
        text: str,
        place_code: str | None = None,
        at: datetime | None = None,
        k: int = 5,
        min_score: float = 0.4,
        exclude: TicketId | None = None,
        terms: Counter[str] | None = None,
    ) -> list[Duplicate]:
        """Up to ``k`` indexed tickets that look like the same incident, best first.

        Candidates must be within ``window`` of ``at`` (when given), at a compatible place, and score at least
        ``min_score`` (cosine similarity of the kept terms, 0..1). ``terms``: ``self.terms(text)``, if known already.
        """
        counts = terms if terms is not None else self.terms(text)
        with self._lock:
            if not self._slot_of:
                return []
            term_ids, weights = self._vector(counts, create=False)
            if not term_ids:
                return []
            scores = self._scores(term_ids, weights)
            candidates = np.nonzero(scores >= min_score)[0]
            if candidates.size == 0:
                return []
            order = candidates[np.argsort(-scores[candidates], kind="stable")]
            out: list[Duplicate] = []
            t = at.timestamp() if at is not None else None
            span = self.window.total_seconds()
            for slot in order.tolist():
                ticket_id = self._ids[slot]
                if ticket_id is None or ticket_id == exclude:
                    continue
                if t is not None and abs(self._at[slot] - t) > span:
                    continue
                if not self.same_place(place_code, self._places[slot]):
                    continue
                out.append(Duplicate(ticket_id, round(min(float(scores[slot]), 1.0), 4)))
                if len(out) >= k:
                    break
            return out

    def hot_spots(
        self,
        min_size: int = 3,
        min_score: float = 0.35,
        at: datetime | None = None,
        *,
        window: timedelta | None = None,
        require_place: bool = True,
    ) -> list[HotSpot]:
        """Clusters of at least ``min_size`` similar tickets in one area, received within ``window`` (default: the
        index's window) up to ``at`` (default: the newest ticket).

        Linking is single-link over pairs scoring >= ``min_score`` (the cosine ``query`` computes), strongest
        pairs first; two clusters merge only if their places lie on one branch of the hierarchy (equal places
        when none is known), and the cluster's place is the more specific one. Tickets without a place only
        join when ``require_place`` is False. Biggest clusters first.

        Cost: one sparse product over the window's tickets (terms found in more than ``max_df`` of the index
        skipped, as in ``query``), computed in blocks of rows; the rest of the index is not touched.
        """
        with self._lock:
            if not self._slot_of:
                return []
            times = np.array(self._at, dtype=np.float64)
            alive = np.array(self._alive, dtype=np.int8) == 1
            t_end = at.timestamp() if at is not None else float(times[alive].max())
            t_start = t_end - (window or self.window).total_seconds()
            picked = np.nonzero(alive & (times >= t_start) & (times <= t_end))[0].tolist()
            slots = [s for s in picked if self._places[s] is not None or not require_place]
            if len(slots) < max(min_size, 2):
                return []
            pairs = self._similar_pairs(slots, min_score)
            # Kruskal-style: strongest links first, each cluster remembers its (most specific) place.
            parent = list(range(len(slots)))
            place = [self._places[s] for s in slots]

            def find(i: int) -> int:
                while parent[i] != i:
                    parent[i] = parent[parent[i]]
                    i = parent[i]
                return i

            for a, b in pairs:
                ra, rb = find(a), find(b)
                if ra == rb:
                    continue
                ok, narrower = self._narrower(place[ra], place[rb])
                if ok:
                    parent[ra] = rb
                    place[rb] = narrower
            groups: dict[int, list[int]] = {}
            for i in range(len(slots)):
                groups.setdefault(find(i), []).append(i)
            spots: list[HotSpot] = []
            for root, members_local in groups.items():
                if len(members_local) < min_size:
                    continue
                members = sorted((slots[i] for i in members_local), key=lambda s: (self._at[s], s))
                weight: Counter[int] = Counter()
                for s in members:
                    vec = self._vectors[s]
                    assert vec is not None
                    for tid, w in zip(vec[0], vec[1], strict=True):
                        weight[tid] += w
                spots.append(
                    HotSpot(
                        place_code=place[root],
                        ticket_ids=[self._ids[s] for s in members],
                        first_at=self._dt[members[0]],
                        last_at=self._dt[members[-1]],
                        top_terms=[
                            t for t in (self._terms[tid] for tid, _ in weight.most_common())
                            if len(t) > 1 and t not in TAG_FILLERS
                        ][:5],
                    )
                )
            spots.sort(key=lambda h: (-h.size, h.first_at))
            return spots

    def _similar_pairs(self, slots: list[int], min_score: float) -> list[tuple[int, int]]:
        """Pairs (i, j), i < j, of positions in ``slots`` whose cosine is >= ``min_score``; strongest first."""
        cap = max(self.max_df * max(len(self._slot_of), 1), 50)
        term_lists: list[np.ndarray] = []
        weight_lists: list[np.ndarray] = []
        for s in slots:
            vec = self._vectors[s]
            assert vec is not None
            term_lists.append(np.array(vec[0], dtype=np.int64))
            weight_lists.append(np.array(vec[1], dtype=np.float32))
        terms = np.concatenate(term_lists)
        weights = np.concatenate(weight_lists)
        rows = np.repeat(np.arange(len(slots), dtype=np.int64), [len(t) for t in term_lists])
        keep = np.array(self._df, dtype=np.int64)[terms] <= cap
        terms, weights, rows = terms[keep], weights[keep], rows[keep]
        if terms.size == 0:
            return []
        columns, local = np.unique(terms, return_inverse=True)
        matrix = csr_matrix((weights, (rows, local.reshape(-1))), shape=(len(slots), len(columns)))
        transposed = matrix.T.tocsr()
        found_a: list[np.ndarray] = []
        found_b: list[np.ndarray] = []
        found_s: list[np.ndarray] = []
        for start in range(0, len(slots), _BLOCK):
            block = (matrix[start:start + _BLOCK] @ transposed).tocoo()
            a = block.row.astype(np.int64) + start
            b = block.col.astype(np.int64)
            hit = (b > a) & (block.data >= min_score)
            found_a.append(a[hit])
            found_b.append(b[hit])
            found_s.append(block.data[hit])
        a_all, b_all, s_all = np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)
        order = np.lexsort((b_all, a_all, -s_all))
        return list(zip(a_all[order].tolist(), b_all[order].tolist(), strict=True))

    def add_many(self, items: Iterable[tuple[TicketId, str, str | None, datetime]]) -> None:
        """Index a batch (e.g. the rebuild at start); IDF counts the whole batch, so its order does not matter."""
        batch: dict[TicketId, tuple[Counter[str], str | None, datetime]] = {}
        for ticket_id, text, place, at in items:
            batch[ticket_id] = (self.terms(text), place, at)
        with self._lock:
            for ticket_id in batch:
                if ticket_id in self._slot_of:
                    self.remove(ticket_id)
            df: Counter[str] = Counter()
            for counts, _, _ in batch.values():
                df.update(counts.keys())
            vectors = [
                (ticket_id, *self._vector(counts, create=True, batch_df=df, batch_n=len(batch)), place, at)
                for ticket_id, (counts, place, at) in batch.items()
            ]
            for ticket_id, term_ids, weights, place, at in vectors:
                self._insert(ticket_id, term_ids, weights, place, at)
